"""switchyard compare as a package: `python3 -m compare` from the repository root (the launcher,
`./switchyard compare`, runs it so). compare.py drives the run, scenarios.py declares the
scenarios, loadgen.py wraps `switchyard load`, servers.py starts and checks the servers, report.py
and figures.py write the report, machine.py describes the machine."""
