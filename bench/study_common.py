"""What the study scripts share: running one training whose report is kept (so a study resumes where it
stopped), and the mean ± sd cells of their tables."""
import json
import os
import statistics
import subprocess
import sys


def run_once(report, command_for, what):
    """Runs command_for(partial_report_path) unless `report` exists; the report is moved into place only when
    the run succeeds, so an interrupted run is not mistaken for a finished one. Returns the report's JSON."""
    if not os.path.exists(report):
        partial = report + ".partial"
        done = subprocess.run(command_for(partial), capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            sys.exit(f"{what} failed")
        os.replace(partial, report)
    return json.load(open(report))


def mean_sd(values, digits=4):
    """One value as it is; several as mean ± sample standard deviation."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
