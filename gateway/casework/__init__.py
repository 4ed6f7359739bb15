"""The work on cases: what the gateway does with one message, one timer or one report.

One module per kind of work (intake, party mail, staff commands, delivery reports, due
timers, history), on top of `record`, the only writer of case state: every change of a
case goes through the state machine (gateway/cases/machine.py) and is recorded as an event.
"""
