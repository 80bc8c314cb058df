"""Write the sample document set of a fictional product, "Lumen Notes", for its support team.

    .venv/bin/python scripts/make_sample_docs.py

Writes into sample_docs/: two multi-page PDFs (built as DOCX with python-docx, then converted by
LibreOffice: ``soffice --headless --convert-to pdf``), a DOCX, an HTML page and a Markdown file. The
facts (prices, limits, day counts, endpoints, versions) are each stated once, in one document, so the
questions in sample_docs/questions.jsonl have one right place to be found. Both the generator and its
output are committed; rerun it only when the content below changes, then re-check questions.jsonl
(tests/test_sample_docs.py does).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "sample_docs"

# Blocks: ("h1"|"h2"|"p", text), ("ul", [items]), ("table", [header, *rows]), ("break",) = page break.
ACCOUNT_GUIDE = [
    ("h1", "Lumen Notes Account Management Guide"),
    ("p", "Guide version 3.2, updated March 2026. This guide is for workspace owners and administrators of "
          "Lumen Notes, the note-taking and knowledge-base service made by Lumen Labs. It explains how to create "
          "an account, manage members, secure sign-in, connect single sign-on, transfer ownership and delete data."),
    ("h2", "Creating an account"),
    ("p", "You can sign up at app.lumennotes.com with an email address, or with a Google or Microsoft account. "
          "When you sign up with an email address we send a verification email; the verification link expires "
          "after 24 hours. If it has expired, sign in and choose Resend verification email."),
    ("p", "Passwords must be at least 12 characters long. We check new passwords against lists of known "
          "breached passwords and refuse the ones that appear there. A password can be changed at any time "
          "from Settings > Profile > Password."),
    ("p", "Every new account gets a personal workspace on the Free plan. You can create more workspaces later; "
          "each workspace has its own members, notebooks and billing."),
    ("break",),
    ("h2", "Workspaces and members"),
    ("p", "A workspace on the Free plan can have up to 3 members. A workspace on the Team plan can have up to "
          "50 members, and an Enterprise workspace has no member limit. Team workspaces can also invite up to "
          "10 guests, who can see only the notebooks shared with them."),
    ("p", "Members are invited from Settings > Members > Invite. An invitation expires after 7 days; an admin "
          "can resend it at any time. Each member has one of four roles:"),
    ("ul", ["Owner: everything, including billing, deleting the workspace and transferring ownership.",
            "Admin: manages members, roles, security settings and integrations.",
            "Editor: creates, edits and shares notes and notebooks.",
            "Viewer: reads notes and adds comments."]),
    ("p", "A workspace always has exactly one Owner. Only the Owner can delete a workspace. Removing a member "
          "does not delete the notes they wrote: their notes stay in the workspace and are reassigned to the "
          "Owner."),
    ("break",),
    ("h2", "Security settings"),
    ("p", "Two-factor authentication (2FA) protects an account with a second step at sign-in. Lumen Notes "
          "supports authenticator apps (TOTP) and hardware security keys (WebAuthn). Turn it on from "
          "Settings > Security > Two-factor authentication."),
    ("p", "When you turn on 2FA you receive 10 single-use backup codes. Keep them somewhere safe: a backup code "
          "is the only way back into the account if you lose your phone and your security key."),
    ("p", "On the Team and Enterprise plans, admins can require 2FA for every member of the workspace. Members "
          "who have not set it up are asked to do so at their next sign-in."),
    ("p", "An idle session is signed out after 14 days. Enterprise admins can set the session length to any value "
          "from 1 to 90 days. After 5 failed sign-in attempts in a row, the account is locked for 15 minutes."),
    ("break",),
    ("h2", "Single sign-on (SSO) and SCIM provisioning"),
    ("p", "SAML single sign-on is available on the Enterprise plan only. Lumen Notes works with Okta, Microsoft "
          "Entra ID (formerly Azure AD), Google Workspace and OneLogin, and with any identity provider that "
          "supports SAML 2.0."),
    ("p", "Before you turn on SSO you must verify your email domain. Add a DNS TXT record of the form "
          "lumen-verification=<code> to your domain; the code is shown in Settings > Security > Domains. "
          "Verification usually completes within an hour, and a pending verification is cancelled after 72 hours."),
    ("p", "To configure SAML, copy the Assertion Consumer Service (ACS) URL and the Entity ID from "
          "Settings > Security > SSO into your identity provider, then upload the identity provider's metadata "
          "XML file. Test the connection with one account before you make SSO mandatory for everyone."),
    ("p", "When SSO is mandatory, members sign in only through the identity provider and their Lumen Notes "
          "passwords stop working. The Owner keeps a password so that the workspace is never locked out if "
          "the identity provider is down; we recommend protecting that account with a hardware security key."),
    ("p", "SCIM 2.0 provisioning creates, updates and deactivates members automatically from your identity "
          "provider. Generate a SCIM token in Settings > Security > SCIM; the token is shown only once. "
          "Deactivated members lose access immediately, but their notes are kept."),
    ("p", "Groups pushed over SCIM become Lumen Notes groups, which you can use to share notebooks. Group "
          "membership is read-only inside Lumen Notes when it is managed by SCIM: change it in the identity "
          "provider instead. Up to 500 groups can be synchronised per workspace."),
    ("p", "If a member signs in through SSO for the first time and no account exists yet, Lumen Notes creates "
          "one with the Editor role (just-in-time provisioning). Admins can change the default role for "
          "just-in-time accounts to Viewer in Settings > Security > SSO."),
    ("p", "SSO sign-in events, SCIM changes and failed assertions are written to the audit log. The audit log "
          "is kept for 1 year on the Enterprise plan and can be exported as CSV from Settings > Audit log. "
          "Each entry records the time, the actor, the IP address and the action."),
    ("p", "Troubleshooting: if sign-in fails with the message \"Invalid SAML response\", check that the clocks "
          "of your identity provider are correct (a difference of more than 3 minutes is refused) and that "
          "the certificate uploaded to Lumen Notes has not expired. Certificates must be renewed in both "
          "places at the same time."),
    ("p", "You can turn SSO off again at any time. Members then sign in with a password; those who never had a "
          "password receive an email with a link to set one. The link is valid for 24 hours and can be sent "
          "again from the sign-in page."),
    ("h2", "Ownership and email changes"),
    ("p", "The Owner can transfer ownership to any Admin from Settings > Members. The new Owner must accept the "
          "transfer within 72 hours, otherwise it is cancelled. After the transfer the previous Owner becomes an "
          "Admin."),
    ("p", "To change the email address of your account, go to Settings > Profile > Email. The change takes effect "
          "only after you confirm it from both the old and the new address."),
    ("break",),
    ("h2", "Data export and account deletion"),
    ("p", "You can export all notes of a workspace from Settings > Export. The export is a ZIP file of Markdown "
          "files with attachments in their original format. We email a download link when the export is ready; "
          "the link is valid for 48 hours."),
    ("p", "Deleted notes go to the Trash, where they stay for 30 days before they are removed for good. "
          "Admins can restore notes from the Trash during that time."),
    ("p", "To delete your account, go to Settings > Profile > Delete account. If you own a workspace with other "
          "members, transfer ownership first. Once an account is deleted, its data is permanently erased from "
          "our systems within 45 days."),
]

SECURITY_POLICY = [
    ("h1", "Lumen Notes Security and Data Policy"),
    ("p", "Policy effective 1 February 2026. This document describes where Lumen Notes stores customer data, "
          "how it is protected, and what happens when something goes wrong."),
    ("h2", "Data location"),
    ("p", "Customer data is hosted on Amazon Web Services. Workspaces in the EU region are stored in Frankfurt "
          "(eu-central-1); workspaces in the US region are stored in Oregon (us-west-2). The region is chosen "
          "when a workspace is created and cannot be changed afterwards."),
    ("h2", "Encryption"),
    ("p", "All data is encrypted at rest with AES-256 and in transit with TLS 1.2 or later. Enterprise customers "
          "can bring their own encryption keys (BYOK) through AWS KMS."),
    ("break",),
    ("h2", "Backups and recovery"),
    ("p", "We take a full backup of every workspace once a day and keep each backup for 35 days. Backups are "
          "stored in a second region of the same geography. Our recovery point objective (RPO) is 24 hours and "
          "our recovery time objective (RTO) is 8 hours."),
    ("h2", "Availability"),
    ("p", "Enterprise plans include an uptime commitment of 99.9% per calendar month. If monthly uptime falls "
          "below 99.9%, the customer receives a service credit of 10% of that month's fee; below 99.0%, the "
          "credit is 25%. Planned maintenance is announced at least 5 days in advance on status.lumennotes.com."),
    ("break",),
    ("h2", "Compliance"),
    ("p", "Lumen Labs holds a SOC 2 Type II report and ISO/IEC 27001 certification. A Data Processing Agreement "
          "(DPA) under the GDPR is available to every customer on request, and the list of subprocessors is "
          "published on our website."),
    ("h2", "Incidents and vulnerability reports"),
    ("p", "If a security incident affects customer data, we notify the affected customers within 72 hours of "
          "confirming it. Please report vulnerabilities to security@lumennotes.com. Our bug bounty programme "
          "pays up to $5,000 for a valid critical finding."),
]

BILLING_FAQ = [
    ("h1", "Lumen Notes Billing FAQ"),
    ("p", "Answers to the questions our support team hears most about plans, payments and invoices. "
          "Prices are in US dollars and exclude taxes."),
    ("h2", "What plans are there and what do they cost?"),
    ("table", [["Plan", "Price per member per month", "Storage"],
               ["Free", "$0", "2 GB per workspace"],
               ["Team", "$8 billed annually, or $10 billed monthly", "100 GB per workspace"],
               ["Enterprise", "$18 billed annually (minimum 25 seats)", "1 TB per workspace"]]),
    ("h2", "Is there a free trial?"),
    ("p", "Yes. The Team plan has a 14-day free trial, and no credit card is required to start it. At the end "
          "of the trial the workspace returns to the Free plan unless you add a payment method."),
    ("h2", "Which payment methods do you accept?"),
    ("p", "We accept Visa, Mastercard, American Express and PayPal. Annual plans over $5,000 can also be paid by "
          "bank transfer against an invoice. We bill in US dollars, euros or British pounds."),
    ("h2", "How are added or removed members billed?"),
    ("p", "When you add members in the middle of a billing period, you are charged a prorated amount for the "
          "rest of that period. When you remove members, the unused time is credited to your next invoice; "
          "credits are not paid out."),
    ("h2", "Can I get a refund?"),
    ("p", "Annual plans can be fully refunded within 30 days of purchase. Monthly plans are not refundable, "
          "but you can cancel at any time and keep access until the end of the month you paid for."),
    ("h2", "What happens if a payment fails?"),
    ("p", "We retry a failed payment 3 times over 10 days and email the Owner each time. If the invoice is "
          "still unpaid 21 days after the first attempt, the workspace becomes read-only until it is paid."),
    ("h2", "Do you offer discounts?"),
    ("p", "Registered nonprofit organisations get 50% off the Team and Enterprise plans. Students and teachers "
          "with a verified school email address get the Team plan for free."),
    ("h2", "How is VAT handled?"),
    ("p", "Customers in the European Union are charged VAT at their country's rate. Businesses can enter a "
          "VAT ID in Settings > Billing to have the reverse charge applied instead."),
    ("h2", "What happens when I cancel?"),
    ("p", "A cancelled paid plan is downgraded to the Free plan at the end of the billing period. Nothing is "
          "deleted: content above the Free plan's limits becomes read-only until you upgrade again."),
]

API_REFERENCE_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Lumen Notes API Reference (v2)</title>
</head>
<body>
<h1>Lumen Notes API Reference (v2)</h1>
<p>The Lumen Notes REST API lets you read and write notes, search a workspace and receive events.
All requests go to the base URL <code>https://api.lumennotes.com/v2</code> over HTTPS and exchange JSON.</p>

<h2>Authentication</h2>
<p>Authenticate every request with a personal API token in the header <code>Authorization: Bearer &lt;token&gt;</code>.
Create tokens in Settings &gt; API. A token expires after 90 days by default; you can choose a shorter lifetime
when you create it. Each token has one or more scopes: <code>notes:read</code>, <code>notes:write</code> and
<code>workspace:admin</code>.</p>

<h2>Rate limits</h2>
<p>Each token may send up to 120 requests per minute. Bulk endpoints, such as exports, are limited to
10 requests per minute. A request over the limit is answered with status 429 and a <code>Retry-After</code> header
that gives the number of seconds to wait.</p>

<h2>Endpoints</h2>
<table>
<tr><th>Method</th><th>Path</th><th>Description</th></tr>
<tr><td>GET</td><td>/v2/notes</td><td>List notes, newest first. Paginated with a cursor; page size 25 by default, 100 at most.</td></tr>
<tr><td>POST</td><td>/v2/notes</td><td>Create a note. The note body may be at most 5 MB.</td></tr>
<tr><td>GET</td><td>/v2/notes/{note_id}</td><td>Get one note with its content and metadata.</td></tr>
<tr><td>PATCH</td><td>/v2/notes/{note_id}</td><td>Update a note. Send the version you read in If-Match; a stale version gets 409.</td></tr>
<tr><td>DELETE</td><td>/v2/notes/{note_id}</td><td>Move a note to the Trash.</td></tr>
<tr><td>POST</td><td>/v2/notes/{note_id}/share</td><td>Create a share link for a note.</td></tr>
<tr><td>GET</td><td>/v2/search?q={query}</td><td>Full-text search over the notes the token can read.</td></tr>
<tr><td>POST</td><td>/v2/exports</td><td>Start an export of the workspace; returns an export_id.</td></tr>
<tr><td>GET</td><td>/v2/exports/{export_id}</td><td>Poll the status of an export; when done it includes the download URL.</td></tr>
</table>

<h2>Webhooks</h2>
<p>Webhooks send an HTTP POST to your URL when something happens in a workspace. The events are
<code>note.created</code>, <code>note.updated</code>, <code>note.deleted</code> and <code>member.joined</code>.
Each delivery is signed with HMAC-SHA256 using your webhook secret; the signature is in the
<code>X-Lumen-Signature</code> header. A delivery that does not get a 2xx answer is retried up to 8 times with
exponential backoff over 24 hours.</p>

<h2>Errors</h2>
<table>
<tr><th>Status</th><th>Meaning</th></tr>
<tr><td>400</td><td>The request is malformed or a field is invalid.</td></tr>
<tr><td>401</td><td>The token is missing, expired or revoked.</td></tr>
<tr><td>403</td><td>The token lacks the scope the endpoint needs.</td></tr>
<tr><td>404</td><td>The note or export does not exist, or the token cannot see it.</td></tr>
<tr><td>409</td><td>Version conflict: the note changed since you read it.</td></tr>
<tr><td>413</td><td>Payload too large (for example a note body over 5 MB).</td></tr>
<tr><td>429</td><td>Rate limit exceeded; wait for the seconds given in Retry-After.</td></tr>
</table>

<h2>SDKs and versions</h2>
<p>Official SDKs: the Python package <code>lumen-notes</code> (version 2.4) and the JavaScript package
<code>@lumen/notes-sdk</code>. API v1 is deprecated and will be shut down on 30 September 2026; move to v2 before then.</p>
</body>
</html>
"""

RELEASE_NOTES_MD = """# Lumen Notes Release Notes

Every release of the Lumen Notes apps (web, desktop and mobile), newest first.

## 4.3.0 (10 March 2026)

- Offline mode for the desktop app on Windows and macOS: notes edited offline sync when you reconnect.
- AI summaries of long notes, available on the Team and Enterprise plans.
- Notebook covers can now be set from any image attachment.

## 4.2.1 (2 February 2026)

- Fixed: edits made at the same time in a shared notebook could create duplicate sync conflicts.
- Fixed: tables wider than the page were cut off in PDF exports.

## 4.2.0 (15 January 2026)

- Webhooks are now generally available (they were in beta since 4.0.0).
- Note version history on the Team plan is extended from 30 days to 90 days.
- New keyboard shortcut: Ctrl+Shift+K inserts a link to another note.

## 4.1.0 (20 November 2025)

- Templates gallery with 40 ready-made templates for meetings, projects and journals.
- Import from Markdown files and folders.
- The maximum attachment size is raised from 25 MB to 100 MB.

## 4.0.0 (1 September 2025)

- API v2 is released, and API v1 is deprecated.
- A new editor, rebuilt for speed on long notes.
- The mobile apps now need iOS 16 or Android 10 at least.

## Known issues

- On Linux the desktop app does not support offline mode yet; it is planned for a later release.
"""


def write_docx(blocks: list[tuple], path: Path) -> None:
    from docx import Document
    from docx.enum.text import WD_BREAK
    from docx.shared import Pt

    doc = Document()
    doc.styles["Normal"].font.size = Pt(11)
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            heading = doc.add_heading(block[1], level=0 if kind == "h1" else 1)
            # Space after a heading, as most house styles have: with none, pdfminer reads the heading
            # and its first paragraph as one text box, and the section title is lost.
            heading.paragraph_format.space_after = Pt(10)
        elif kind == "p":
            doc.add_paragraph(block[1])
        elif kind == "ul":
            for item in block[1]:
                doc.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            rows = block[1]
            table = doc.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        elif kind == "break":
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    doc.core_properties.author = "Lumen Labs Support"
    doc.save(str(path))


def docx_to_pdf(blocks: list[tuple], pdf_path: Path) -> None:
    soffice = shutil.which("soffice")
    if not soffice:
        sys.exit("soffice (LibreOffice) is needed to build the PDFs")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / (pdf_path.stem + ".docx")
        write_docx(blocks, src)
        # A private profile: a running LibreOffice (or a parallel conversion) cannot block this one.
        profile = Path(tmp) / "profile"
        subprocess.run(
            [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
             "--outdir", tmp, str(src)],
            check=True, capture_output=True, timeout=180,
        )
        shutil.copyfile(Path(tmp) / (pdf_path.stem + ".pdf"), pdf_path)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    docx_to_pdf(ACCOUNT_GUIDE, OUT / "account-management-guide.pdf")
    docx_to_pdf(SECURITY_POLICY, OUT / "security-and-data-policy.pdf")
    write_docx(BILLING_FAQ, OUT / "billing-faq.docx")
    (OUT / "api-reference.html").write_text(API_REFERENCE_HTML, encoding="utf-8")
    (OUT / "release-notes.md").write_text(RELEASE_NOTES_MD, encoding="utf-8")
    for p in sorted(OUT.iterdir()):
        print(f"{p.name:35s} {p.stat().st_size:8d} bytes")


if __name__ == "__main__":
    main()
