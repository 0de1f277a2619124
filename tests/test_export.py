"""Script exports: Fountain that re-parses, HTML and PDF screenplays, the CSV shot list, `movie-gen export`."""

from __future__ import annotations

import csv
import io
import itertools
import os
import subprocess
import sys

import pytest
from pypdf import PdfReader
from screenplain.types import Action, Dialog, Slug, Transition

from movie_gen.export.fountain import action, cue, to_fountain
from movie_gen.export.scene_headings import scene_heading
from movie_gen.export.screenplay import parse_fountain
from movie_gen.export.shot_list import COLUMNS

from .servers import ROOT

pytestmark = pytest.mark.timeout(120)

CONTENT_TYPES = {"json": "application/json", "fountain": "text/plain; charset=utf-8",
                 "html": "text/html; charset=utf-8", "pdf": "application/pdf",
                 "csv": "text/csv; charset=utf-8"}


@pytest.fixture(scope="module")
def finished(offline_stack):
    """A completed job of 7 segments in sets of 3, and its script as JSON."""
    job_id = offline_stack.generate(idea="A lighthouse keeper finds a map inside a storm",
                                    total_segments=7, segments_per_set=3)
    assert offline_stack.wait_job(job_id)["state"] == "completed"
    return job_id, offline_stack.get(f"/jobs/{job_id}/script").json()


@pytest.fixture(scope="module")
def partial(make_stack):
    """A job whose set 2 failed for good: its stack and id."""
    stack = make_stack(OFFLINE_FAIL_SETS="2")
    job_id = stack.generate(idea="A choir of lighthouses", total_segments=6, segments_per_set=2,
                            max_retries=0)
    assert stack.wait_job(job_id)["state"] == "partial"
    return stack, job_id


def _download(stack, job_id: str, fmt: str):
    response = stack.get(f"/jobs/{job_id}/script", params={"format": fmt})
    assert response.status_code == 200, response.text
    return response


def _expected_counts(script: dict) -> tuple[int, int]:
    """Scenes (a new one at each change of set, place or time of day) and speeches (narration + runs)."""
    key = lambda s: (s["set_number"], s["location"], s["time_of_day"])  # noqa: E731
    scenes = len(list(itertools.groupby(script["segments"], key=key)))
    speeches = sum(1 + len(list(itertools.groupby(d["character"] for d in s["dialogue"])))
                   for s in script["segments"])
    return scenes, speeches


@pytest.mark.parametrize("fmt", list(CONTENT_TYPES))
def test_every_format_downloads_with_its_content_type(offline_stack, finished, fmt):
    job_id, script = finished
    response = _download(offline_stack, job_id, fmt)
    assert response.headers["Content-Type"] == CONTENT_TYPES[fmt]
    assert len(response.content) > 500
    if fmt == "json":
        assert response.json() == script
    else:
        assert f'filename="A_Lighthouse_Keeper_Finds_A_Map.{fmt}"' in response.headers["Content-Disposition"]


def test_the_job_links_itself_its_events_and_every_export(offline_stack, finished):
    job_id, _ = finished
    links = offline_stack.get(f"/jobs/{job_id}").json()["links"]
    assert links == {"self": f"/jobs/{job_id}", "events": f"/jobs/{job_id}/events", "files": f"/jobs/{job_id}/files/",
                     "exports": {fmt: f"/jobs/{job_id}/script?format={fmt}" for fmt in CONTENT_TYPES}}
    metadata = offline_stack.get(f"/jobs/{job_id}").json()["result"]["metadata_file"]
    assert offline_stack.get(links["files"] + metadata.split("/")[-1]).json()["job_id"] == job_id
    for fmt, link in links["exports"].items():
        response = offline_stack.get(link)
        assert response.status_code == 200 and response.headers["Content-Type"] == CONTENT_TYPES[fmt]
    submitted = offline_stack.post("/generate-movie-auto", json={"idea": "Linked", "total_segments": 1})
    assert submitted.json()["links"]["self"] == submitted.headers["Location"]
    spec = offline_stack.get("/openapi.json").json()["components"]["schemas"]
    assert spec["Job"]["properties"]["links"] == {"$ref": "#/components/schemas/JobLinks"}
    assert set(spec["ExportLinks"]["properties"]) == set(CONTENT_TYPES)
    offline_stack.wait_job(submitted.json()["job_id"])


def test_fountain_reparses_to_the_same_scenes_and_speeches(offline_stack, finished):
    job_id, script = finished
    text = _download(offline_stack, job_id, "fountain").content.decode("utf-8")
    screenplay = parse_fountain(text)
    paragraphs = list(screenplay)
    scenes, speeches = _expected_counts(script)
    assert sum(isinstance(p, Slug) for p in paragraphs) == scenes
    dialogs = [p for p in paragraphs if isinstance(p, Dialog)]
    assert len(dialogs) == speeches
    assert screenplay.title_page["Title"] == [script["story_title"]]
    names = {c["name"].upper() for c in script["characters"]}
    assert {str(d.character) for d in dialogs} <= names | {"NARRATOR (V.O.)"}
    spoken = {str(line) for d in dialogs for _, line in d.blocks}
    assert {d["line"] for s in script["segments"] for d in s["dialogue"]} <= spoken
    assert {s["narration"] for s in script["segments"]} <= spoken
    transitions = [str(p.line) for p in paragraphs if isinstance(p, Transition)]
    assert transitions == ["CUT TO:"] * (len(script["set_synopses"]) - 1) + ["FADE OUT."]
    assert str(paragraphs[0].lines[0]) == "FADE IN:" and isinstance(paragraphs[0], Action)


def _indent(page_text: str, starts: str) -> int:
    line = next(line for line in page_text.splitlines() if line.strip().startswith(starts))
    return len(line) - len(line.lstrip())


def test_pdf_is_a_formatted_screenplay(offline_stack, finished):
    job_id, script = finished
    pdf = PdfReader(io.BytesIO(_download(offline_stack, job_id, "pdf").content))
    assert len(pdf.pages) >= 2  # the title page, then the script
    assert (float(pdf.pages[1].mediabox.width), float(pdf.pages[1].mediabox.height)) == (612, 792)
    title_page = " ".join(pdf.pages[0].extract_text().split())
    assert script["story_title"] in title_page and "Written by" in title_page
    body = "\n".join(page.extract_text(extraction_mode="layout") for page in pdf.pages[1:])
    first = script["segments"][0]
    assert f"{first['location'].upper()} - {first['time_of_day'].upper()}" in body
    assert first["dialogue"][0]["line"] in " ".join(body.split())
    action_at, cue_at = _indent(body, "FADE IN:"), _indent(body, "NARRATOR (V.O.)")
    line_at, transition_at = _indent(body, "Segment 1 "), _indent(body, "CUT TO:")
    assert action_at < line_at < cue_at < transition_at  # action, dialogue, cue, transition columns


def test_html_shows_each_scene_and_speech(offline_stack, finished):
    job_id, script = finished
    page = _download(offline_stack, job_id, "html").text
    scenes, speeches = _expected_counts(script)
    assert page.count("<h6>") == scenes and page.count('<p class="character">') == speeches
    assert f"<title>{script['story_title']}</title>" in page


def test_shot_list_has_one_whole_row_per_segment(offline_stack, finished):
    job_id, script = finished
    raw = _download(offline_stack, job_id, "csv").content
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert list(rows[0]) == COLUMNS
    assert [int(r["segment_number"]) for r in rows] == list(range(1, 8))
    assert [int(r["set_number"]) for r in rows] == [1, 1, 1, 2, 2, 2, 3]
    looks = {c["name"]: c["visual_description"] for c in script["characters"]}
    for row, segment in zip(rows, script["segments"]):
        assert row["visual_prompt"].startswith(segment["visual_prompt"])
        assert int(row["duration_seconds"]) == segment["duration_seconds"]
        for name in row["characters"].split("; "):
            assert looks[name] in row["visual_prompt"]
        assert all(d["line"] in row["dialogue"] for d in segment["dialogue"])


def test_missing_sets_are_placeholders_never_skipped(partial):
    stack, job_id = partial
    fountain = _download(stack, job_id, "fountain").text
    note = f"Set 2 failed after 1 attempt; retry with movie-gen retry {job_id} (or POST /retry-failed-story-sets)"
    assert f"[[{note}]]" in fountain and "RETRY PENDING" not in fountain.upper()
    assert _download(stack, job_id, "json").json()["missing_notes"] == {"2": note}
    pdf = PdfReader(io.BytesIO(_download(stack, job_id, "pdf").content))
    assert "SET 2 FAILED AFTER 1 ATTEMPT; RETRY WITH" in " ".join(
        " ".join(page.extract_text().split()) for page in pdf.pages)
    rows = list(csv.DictReader(io.StringIO(_download(stack, job_id, "csv").text)))
    assert [int(r["segment_number"]) for r in rows] == [1, 2, 5, 6]


@pytest.mark.parametrize("bad", ["docx", "", "PDF", "fountain;drop"])
def test_unknown_format_is_a_400_naming_the_field(offline_stack, finished, bad):
    response = offline_stack.get(f"/jobs/{finished[0]}/script", params={"format": bad})
    assert response.status_code == 400
    assert "format" in response.json()["errors"]


def test_unknown_job_is_a_404_in_every_format(offline_stack):
    for fmt in CONTENT_TYPES:
        response = offline_stack.get("/jobs/nope/script", params={"format": fmt})
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("fmt", ["pdf", "csv"])
def test_cli_export_writes_the_file_and_prints_its_path(offline_stack, finished, tmp_path, fmt):
    job_id, _ = finished
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MOVIE_GEN_URL": offline_stack.base_url}
    done = subprocess.run([sys.executable, "-m", "movie_gen", "export", job_id, "--format", fmt,
                           "-o", str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    path = tmp_path / f"{job_id}.{fmt}"
    assert done.stdout.strip() == str(path)
    expected = _download(offline_stack, job_id, fmt).content
    assert path.read_bytes().startswith(b"%PDF") if fmt == "pdf" else path.read_bytes() == expected
    missing = subprocess.run([sys.executable, "-m", "movie_gen", "export", "nope", "--format", fmt],
                             env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr


@pytest.mark.parametrize("text", ["INT. this reads like a heading", "EXT the sea", ".dot first",
                                  "> arrow", "# hash", "= equals", "===", "SMASH CUT TO:", "!bang",
                                  "Stars *everywhere* and [[notes]]"])
def test_action_text_stays_action(text):
    paragraphs = list(parse_fountain(f"{action(text)}\n"))
    assert len(paragraphs) == 1 and isinstance(paragraphs[0], Action)
    assert str(paragraphs[0].lines[0]) == text.replace("[[", "[ [")  # a note would be dropped


@pytest.mark.parametrize("name", ["Mara", "李明", "d'Artagnan", "Ana (the elder)", "3PO"])
def test_any_roster_name_is_a_character_cue(name):
    paragraphs = list(parse_fountain(f"{cue(name)}\nHello.\n"))
    assert isinstance(paragraphs[0], Dialog) and str(paragraphs[0].character) == name.upper()


@pytest.mark.parametrize("location, time, description, heading", [
    ("the harbour", "night", "", "EXT. THE HARBOUR - NIGHT"),
    ("the archive", "dawn", "", "INT. THE ARCHIVE - DAWN"),
    ("the lighthouse", "day", "tall windows over the sea", "EXT. THE LIGHTHOUSE - DAY"),
    ("the lighthouse", "day", "", "INT./EXT. THE LIGHTHOUSE - DAY"),
    ("INT. Kitchen", "evening", "", "INT. KITCHEN - EVENING"),
])
def test_scene_headings(location, time, description, heading):
    assert scene_heading(location, time, description) == heading
    assert isinstance(list(parse_fountain(heading + "\n"))[0], Slug)


def test_a_script_without_segments_still_writes_a_screenplay():
    script = {"job_id": "j", "state": "generating", "story_title": None, "segments": [],
              "missing_sets": [1, 2]}
    text = to_fountain(script)
    assert "[[Set 1 missing: still being written]]" in text and "Title: Untitled" in text
    assert not any(isinstance(p, Slug) for p in parse_fountain(text))
