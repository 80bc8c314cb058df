"""Two processes editing different cells of the same examples lose nothing (real SQLite, real processes)."""

import subprocess
import sys
import textwrap

from rag_ft.training.examples import ExampleStore

N, ROUNDS = 20, 6
EDITOR = textwrap.dedent("""
    import sys
    from rag_ft.training.examples import ExampleStore
    from rag_ft.training.grid import EditorState, save_delta
    db, role, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = ExampleStore(db)
    ids = [e.id for e in store.list()]
    for r in range(rounds):
        if role == "user":  # one cell at a time, as the chat's "edit answer" does
            for i in ids:
                store.set_text(i, "user", f"user edit {r} of {i}")
        else:  # the grid's path: a whole delta saved at once from a grid drawn before the edits
            delta = {"edited_rows": {p: {"assistant": f"assistant edit {r} of {i}"} for p, i in enumerate(ids)}}
            save_delta(store, ids, delta, EditorState())
    store.close()
""")


def test_two_processes_editing_different_cells_keep_both_edits(data_dir):
    db = data_dir / "studio.sqlite"
    store = ExampleStore(db)
    for n in range(N):
        store.add([{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}])
    store.close()
    procs = [subprocess.Popen([sys.executable, "-c", EDITOR, str(db), role, str(ROUNDS)])
             for role in ("user", "assistant")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = ExampleStore(db)
    examples = store.list()
    assert len(examples) == N
    for ex in examples:
        assert ex.user == f"user edit {ROUNDS - 1} of {ex.id}"
        assert ex.assistant == f"assistant edit {ROUNDS - 1} of {ex.id}"
    store.close()
