"""Which output mode passes most often on one model server: a 2-set job per mode.

    python bench/model_modes.py BASE_URL [--model NAME] [--attempts 3] [--segments 2] [--max-tokens 2000]

For each mode (json_schema, json_object, prompt) the script writes a story bible and then two
sets through the same writer, validation and retry feedback as the workers (each unit gets up to
`--attempts` attempts, the next one quoting the previous validation error). It prints per mode:
attempts made, the share of valid replies, seconds, and the tokens the server reported. The
server's context size is read as the workers read it (`GET /v1/models`), unless
OPENAI_CONTEXT_TOKENS is set in the environment.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from movie_gen.config.settings import Settings
from movie_gen.errors import InvalidModelOutput, MovieGenError
from movie_gen.llm.openai_writer import OpenAIWriter
from movie_gen.llm.server_profile import PROFILES
from movie_gen.llm.writer import CallContext, LLMReply
from movie_gen.story.segments import validate_segments
from movie_gen.story.story_bible import plan_sets, validate_bible

IDEA = "A lighthouse keeper finds a map inside a storm"
MODES = ("json_schema", "json_object", "prompt")


@dataclass
class Tally:
    """What one mode cost and how often its replies passed."""

    attempts: int = 0
    valid: int = 0
    seconds: float = 0.0
    tokens: int = 0
    units_done: int = 0
    errors: list[str] = field(default_factory=list)

    def add_usage(self, usage: dict[str, int] | None) -> None:
        usage = usage or {}
        self.tokens += int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))


def _unit(tally: Tally, attempts: int, call: Callable[[str | None], LLMReply],
          check: Callable[[Any], Any]) -> Any:
    """Up to `attempts` attempts at one unit; the next attempt quotes the last validation error."""
    feedback = None
    for _ in range(attempts):
        tally.attempts += 1
        try:
            reply = call(feedback)
            tally.add_usage(reply.usage)
            result = check(reply.data)
        except InvalidModelOutput as exc:
            tally.add_usage(exc.usage)
            tally.errors.append(str(exc)[:160])
            feedback = str(exc)
            continue
        except MovieGenError as exc:
            tally.add_usage(exc.usage)
            tally.errors.append(f"{exc.kind}: {str(exc)[:160]}")
            return None
        tally.valid += 1
        tally.units_done += 1
        return result
    return None


def run_mode(settings: Settings, attempts: int, segments: int) -> Tally:
    """A bible and two sets in one mode."""
    PROFILES.clear()
    writer = OpenAIWriter(settings)
    tally = Tally()
    started = time.perf_counter()
    plans = plan_sets(segments, max(1, segments // 2))
    bible = _unit(tally, attempts,
                  lambda fb: writer.write_bible(IDEA, len(plans), segments, CallContext("bench", None, 1, fb)),
                  lambda data: validate_bible(data, len(plans)))
    if bible is not None:
        roster = [c["id"] for c in bible["characters"]]
        places = [loc["name"] for loc in bible["locations"]]
        for plan in plans:
            _unit(tally, attempts,
                  lambda fb, plan=plan: writer.write_set(IDEA, bible, plan,
                                                         CallContext("bench", plan.set_number, 1, fb)),
                  lambda data, plan=plan: validate_segments(data, plan, roster, places))
    tally.seconds = time.perf_counter() - started
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="the server's OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--model", default="local")
    parser.add_argument("--attempts", type=int, default=3, help="attempts per unit (bible, each set)")
    parser.add_argument("--segments", type=int, default=2, help="segments in the job (two sets)")
    parser.add_argument("--max-tokens", default="2000")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    print(f"{'mode':<12} {'units':>5} {'attempts':>8} {'valid':>6} {'rate':>5} {'seconds':>8} {'tokens':>7}")
    for mode in args.modes.split(","):
        env = {**os.environ, "LLM_PROVIDER": "openai", "OPENAI_BASE_URL": args.base_url,
               "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "local"), "OPENAI_MODEL": args.model,
               "OPENAI_MAX_TOKENS": args.max_tokens, "OPENAI_TIMEOUT_S": "600",
               "LLM_STRUCTURED_OUTPUT": mode}
        tally = run_mode(Settings.from_env(env), args.attempts, args.segments)
        rate = tally.valid / tally.attempts if tally.attempts else 0.0
        print(f"{mode:<12} {tally.units_done:>3}/3 {tally.attempts:>8} {tally.valid:>6} {rate:>5.0%} "
              f"{tally.seconds:>8.1f} {tally.tokens:>7}", flush=True)
        for error in tally.errors:
            print(f"    {error}")


if __name__ == "__main__":
    main()
