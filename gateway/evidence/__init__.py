"""What the correspondence proves: the facts a chargeback answer needs, recognised in the
parties' messages and attachments (tracking numbers, refund references, delivery and
refund dates, return authorisations, photos...). `recognise`, `carriers`, `dates` and
`needs` are pure; `collect` reads a case's messages from the database."""
