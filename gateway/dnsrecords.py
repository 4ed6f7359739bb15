"""The DNS records the gateway's domain needs, for `dispute-gateway dns-records`. Pure:
settings and the administrator's answers in, zone-file lines out.

- MX: the host that receives the domain's mail (the Postfix in front of the gateway).
- SPF: the envelope sender of every outgoing message is bounce+…@ the domain, so SPF is
  checked against the domain itself: only the hosts that send its mail may.
- DKIM: one TXT record per [outbound.dkim] key, from the key file.
- DMARC: From is always on the domain, aligned with SPF and DKIM, so alignment can be strict.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.mail import dkim
from gateway.settings import Settings


@dataclass(frozen=True)
class Record:
    name: str
    kind: str
    value: str  # already in zone-file form (quoted strings for TXT)
    comment: str


def records(settings: Settings, *, mx: str, sending_hosts: tuple[str, ...], dmarc_policy: str,
            dmarc_reports: str) -> list[Record]:
    """Every record of the domain, in the order an administrator publishes them."""
    domain = settings.gateway.domain
    found = [Record(domain, "MX", f"10 {_fqdn(mx)}",
                    f"mail for {domain} reaches {mx}, the MTA that hands it to the gateway")]
    hosts = [h for h in dict.fromkeys(sending_hosts)]
    mechanisms = " ".join("mx" if host == mx else f"a:{host}" for host in hosts)
    found.append(Record(domain, "TXT", _quoted([f"v=spf1 {mechanisms} -all"]),
                        f"SPF: outgoing mail has the envelope sender bounce+…@{domain}; it leaves from "
                        + ", ".join(hosts)))
    found += dkim_records(settings)
    rua = f"; rua=mailto:{dmarc_reports}" if dmarc_reports else ""
    found.append(Record(f"_dmarc.{domain}", "TXT", _quoted([f"v=DMARC1; p={dmarc_policy}; adkim=s; aspf=s{rua}"]),
                        "DMARC: From is on this domain, aligned with the envelope sender and the DKIM d="))
    return found


def dkim_records(settings: Settings) -> list[Record]:
    dkim_settings = settings.outbound.dkim
    result = []
    for key in dkim_settings.keys if dkim_settings.signing else ():
        result.append(dkim_record(key.selector, dkim_settings.domain, dkim.read_private_key(key.key_file).private_pem,
                                  f"DKIM key {key.selector} ({key.key_file})"))
    return result


def dkim_record(selector: str, domain: str, private_pem: bytes, comment: str) -> Record:
    """The TXT record that publishes the public half of `private_pem` under `selector`."""
    return Record(dkim.record_name(selector, domain), "TXT",
                  _quoted(dkim.txt_strings(dkim.public_key_value(private_pem))), comment)


def dkim_note(settings: Settings) -> str | None:
    """Why no DKIM record is printed, when none is."""
    dkim_settings = settings.outbound.dkim
    if dkim_settings.signing:
        return None
    if dkim_settings.configured:
        return ("DKIM: the gateway does not sign ([outbound.dkim] enabled = false): publish the record of the "
                "selector your MTA signs with (OpenDKIM: the .txt file opendkim-genkey wrote)")
    return ("DKIM: no [outbound.dkim] key yet: `dispute-gateway dkim keygen` writes one and prints its record; "
            "without it mail to Gmail, Yahoo and Outlook may be refused or land in spam")


def format_records(found: list[Record], *, ttl: int) -> str:
    width = max(len(r.name) + 1 for r in found)
    lines = []
    for record in found:
        lines.append(f"; {record.comment}")
        lines.append(f"{(record.name + '.').ljust(width)} {ttl} IN {record.kind:3} {record.value}")
    return "\n".join(lines)


def _quoted(strings: list[str]) -> str:
    quoted = [f'"{s}"' for s in strings]
    return quoted[0] if len(quoted) == 1 else "( " + " ".join(quoted) + " )"


def _fqdn(host: str) -> str:
    return host if host.endswith(".") else host + "."
