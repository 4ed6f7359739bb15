"""Evidence bundles: a case taken out of the gateway in a form a bank, a mediator or a
court accepts. One ZIP laid out as a BagIt bag (RFC 8493): summary, transcript (PDF and
HTML), every raw message as received with its envelope and sender check, every
attachment, the delivery ledger, and case.json whose events form a SHA-256 hash chain.

record (read a case) -> document (summary, transcript HTML, ledger) and pdf -> bag (the
ZIP and its manifests); chain and redact are pure; verify checks a bundle; service is the
edge the CLI and the `#export` command call.
"""
