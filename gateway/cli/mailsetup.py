"""Commands that set up the domain's mail: `dkim keygen` and `dns-records`."""

from __future__ import annotations

import socket
from pathlib import Path

from gateway import dnsrecords
from gateway.cli.common import CommandError, load_settings
from gateway.mail import dkim


def cmd_dkim_keygen(args) -> int:
    settings = load_settings(args)
    domain = settings.gateway.domain
    selector = (args.selector or f"dg{args.clock.now():%Y%m}").strip().lower()
    if not dkim.is_selector(selector):
        raise CommandError(f"--selector: not a DNS label (letters, digits and '-', at most 63): {selector!r}")
    base = Path(settings.source).resolve().parent
    path = Path(args.out).resolve() if args.out else base / "dkim" / f"{selector}.pem"
    try:
        dkim.write_private_key(path, dkim.generate_private_key(args.bits))
    except dkim.KeyProblem as problem:
        raise CommandError(str(problem)) from None
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None
    record = dnsrecords.dkim_record(selector, domain, path.read_bytes(), f"DKIM key {selector}")
    print(f"wrote {path} ({args.bits}-bit RSA key, mode 0600)\n")
    print("1. Publish this DNS record (check it with: dig +short TXT "
          f"{dkim.record_name(selector, domain)}):\n")
    print(dnsrecords.format_records([record], ttl=3600).split("\n", 1)[1])
    print(f"\n2. Then sign with it: in {settings.source}\n")
    print(f'[outbound.dkim]\nselector = "{selector}"\nkey_file = "{path}"\n')
    print("   (rotating: keep the old key signing as [[outbound.dkim.extra_keys]] until the new record is "
          "visible, then remove it)\n3. Restart the processes that send mail (run, worker).")
    return 0


def cmd_dns_records(args) -> int:
    settings = load_settings(args)
    smtp = settings.outbound.smtp
    mx = args.mx or socket.getfqdn()
    if args.sending_host:
        senders = tuple(args.sending_host)
    elif smtp is None or _loopback(smtp.host):
        senders = (mx,)
    else:
        senders = (smtp.host,)
    try:
        found = dnsrecords.records(settings, mx=mx, sending_hosts=senders, dmarc_policy=args.dmarc_policy,
                                   dmarc_reports=args.dmarc_reports or f"postmaster@{settings.gateway.domain}")
    except dkim.KeyProblem as problem:
        raise CommandError(f"[outbound.dkim] key_file: {problem}") from None
    print(f"; DNS records for {settings.gateway.domain} (configuration {settings.source})")
    if not args.mx:
        print(f"; MX host: {mx}, this machine's name (--mx HOST if mail is received elsewhere)")
    if smtp is None:
        print("; [outbound] writes to a Maildir: nothing is sent yet; SPF names the hosts that will send")
    print(dnsrecords.format_records(found, ttl=args.ttl))
    note = dnsrecords.dkim_note(settings)
    if note:
        print(f"; {note}")
    print("; Reverse DNS: the address each sending host sends from must have a PTR record naming a host "
          "that resolves back to it (set by whoever runs that address)")
    return 0


def _loopback(host: str) -> bool:
    from gateway.config import _loopback as loopback

    return loopback(host)
