"""Email over SMTP with STARTTLS: a plain-text and an HTML part."""

from __future__ import annotations

import html
import smtplib
from email.message import EmailMessage

from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery, Outcome, finding_url
from harvester.notify.senders.base import SendContext
from harvester.notify.senders.text import summary, where

_ROWS = ("severity", "detector", "principal", "source_ip", "first_seen", "last_seen", "count", "id")


def message(
    destination: DestinationSpec, delivery: Delivery, public_url: str | None
) -> EmailMessage:
    p = delivery.payload
    url = finding_url(public_url, delivery)
    rows = [(name, str(p.get(name) or "-")) for name in _ROWS]
    rows.insert(2, ("where", where(p)))
    plain = [summary(delivery), ""]
    plain += [f"{name:<11} {value}" for name, value in rows]
    plain += ["", str(p.get("explanation") or ""), ""]
    if url:
        plain.append(url)
    plain.append(f"delivery {delivery.delivery_id}")
    cells = "".join(
        f"<tr><th align='left'>{html.escape(n)}</th><td>{html.escape(v)}</td></tr>" for n, v in rows
    )
    link = f"<p><a href='{html.escape(url)}'>Open in audit-harvester</a></p>" if url else ""
    rich = (
        f"<html><body><h2>{html.escape(summary(delivery))}</h2><table>{cells}</table>"
        f"<p>{html.escape(str(p.get('explanation') or ''))}</p>{link}"
        f"<p><small>delivery {html.escape(delivery.delivery_id)}</small></p></body></html>"
    )
    msg = EmailMessage()
    msg["Subject"] = summary(delivery)
    msg["From"] = destination.email_from or ""
    msg["To"] = ", ".join(destination.email_to)
    msg["X-Harvester-Delivery"] = delivery.delivery_id
    msg.set_content("\n".join(plain))
    msg.add_alternative(rich, subtype="html")
    return msg


def send(destination: DestinationSpec, delivery: Delivery, context: SendContext) -> Outcome:
    assert destination.smtp_host is not None  # validated
    msg = message(destination, delivery, context.public_url)
    timeout = destination.timeout.total_seconds()
    try:
        with smtplib.SMTP(destination.smtp_host, destination.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
            elif destination.smtp_starttls:
                return Outcome(
                    ok=False,
                    error=f"{destination.smtp_host} does not offer STARTTLS (set smtp_starttls: "
                    "false only for a relay on a trusted network)",
                    outcome="failed",
                )
            if destination.smtp_username and destination.secret:
                smtp.login(destination.smtp_username, destination.secret)
            refused = smtp.send_message(msg)
    except TimeoutError:
        return Outcome(ok=False, error=f"no answer within {timeout:g}s", outcome="timeout")
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(ok=False, error=f"SMTP: {exc}", outcome="failed")
    if refused:
        return Outcome(ok=False, error=f"recipients refused: {sorted(refused)}", outcome="failed")
    return Outcome(ok=True, answer=f"accepted by {destination.smtp_host}", outcome="sent")
