"""The `movie-gen` command line: subcommands, options and help texts with examples."""

from __future__ import annotations

import argparse

SCRIPT_FORMATS = ("fountain", "html", "pdf", "csv", "json")
DEMO_IDEA = "A retired lighthouse keeper finds a map that only appears during storms"

EXAMPLES = """examples:
  movie-gen up                                   # Redis (embedded if needed), worker, web, Flower
  movie-gen generate "A heist on a moving train" --segments 30 --per-set 10
  movie-gen generate "A heist on a moving train" --json > result.json
  movie-gen status 3f2c9a...                     # progress, or the final table
  movie-gen retry 3f2c9a...                      # regenerate only the failed sets
  movie-gen jobs --state partial                 # recent jobs, newest first
  movie-gen export 3f2c9a... --format pdf        # the screenplay as a file (or fountain, html, csv)
  movie-gen demo                                 # start, write a sample script, stop
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `movie-gen`."""
    parser = argparse.ArgumentParser(
        prog="movie-gen", description="Turn a one-line story idea into a long, consistent movie script.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="run Redis, a worker, the web app and Flower until Ctrl-C",
                        description="Run everything on this machine until Ctrl-C or SIGTERM. Uses "
                        "REDIS_URL when it answers, else an embedded Redis with its data in .movie-gen/.")
    up.add_argument("--no-flower", action="store_true", help="do not start the Flower dashboard")
    gen = sub.add_parser("generate", help="submit an idea and follow it live",
                         description="Submit an idea and show each set's progress until the job ends. "
                         "Exit status 0 when every set succeeded, 1 when some failed.")
    gen.add_argument("idea", help="the one-line story idea")
    gen.add_argument("--segments", type=int, default=30, help="total segments (1-1000, default 30)")
    gen.add_argument("--per-set", type=int, default=10, help="segments per set (1-50, default 10)")
    gen.add_argument("--max-retries", type=int, default=3, help="retries per set (0-10, default 3)")
    gen.add_argument("--output-directory", default="generated_movie_script",
                     help="directory under OUTPUT_ROOT (default generated_movie_script)")
    gen.add_argument("--no-files", action="store_true", help="keep the script in the job only")
    gen.add_argument("--json", action="store_true", help="print the result object as JSON (for scripts)")
    status = sub.add_parser("status", help="show a job's progress, or its final table")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="print the job as JSON")
    retry = sub.add_parser("retry", help="regenerate only the failed sets of a job")
    retry.add_argument("job_id")
    retry.add_argument("--max-retries", type=int, default=3, help="retries per set (1-10, default 3)")
    retry.add_argument("--json", action="store_true", help="print the result object as JSON")
    retry.add_argument("--when-ready", action="store_true",
                       help="schedule the retry for when the job's spent model quota is back "
                            "(its not_before), and return at once")
    jobs = sub.add_parser("jobs", help="list recent jobs, newest first")
    jobs.add_argument("--state", help="only jobs in this state (e.g. partial, completed)")
    jobs.add_argument("--limit", type=int, default=20, help="how many (1-100, default 20)")
    jobs.add_argument("--json", action="store_true", help="print the page as JSON")
    export = sub.add_parser("export", help="download a job's script as a file and print its path",
                            description="Download a job's script: a Fountain screenplay, the screenplay "
                            "as HTML or PDF, a CSV shot list, or JSON. Prints the path of the file.")
    export.add_argument("job_id")
    export.add_argument("--format", choices=SCRIPT_FORMATS, default="fountain",
                        help="fountain (default), html, pdf, csv (shot list) or json")
    export.add_argument("-o", "--output", help="file or directory to write (default: ./JOB_ID.FORMAT)")
    demo = sub.add_parser("demo", help="start the stack, generate a sample script, stop",
                          description="Start everything as `up` does (on free ports), write a "
                          "sample script end to end with live progress, print where the files are, stop.")
    demo.add_argument("--idea", default=DEMO_IDEA, help="the idea to write (default: a sample)")
    demo.add_argument("--segments", type=int, default=30, help="total segments (default 30)")
    demo.add_argument("--per-set", type=int, default=10, help="segments per set (default 10)")
    return parser
