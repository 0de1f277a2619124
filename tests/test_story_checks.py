"""Story checks a JSON schema cannot express, with the bad outputs small local models wrote."""

from __future__ import annotations

import copy

import pytest

from movie_gen.config.settings import Settings
from movie_gen.errors import InvalidModelOutput
from movie_gen.export.fountain import to_fountain
from movie_gen.llm.offline_writer import OfflineWriter
from movie_gen.llm.output_modes import schema_instructions
from movie_gen.llm.writer import CallContext
from movie_gen.story.segments import set_json_schema, validate_segments
from movie_gen.story.story_bible import SetPlan, bible_json_schema, validate_bible
from movie_gen.story.text_rules import DESCRIPTIONS, known_name, same_name

PLAN = SetPlan(1, 1, 3)


@pytest.fixture(scope="module")
def story() -> tuple[dict, dict]:
    writer = OfflineWriter(Settings())
    bible_data = writer.write_bible("A lighthouse keeper finds a map inside a storm", 1, 3, CallContext("j")).data
    bible = validate_bible(bible_data, 1)
    segments = writer.write_set("idea", bible, PLAN, CallContext("j", 1)).data
    return bible_data, segments


def _check(bible_data: dict, segments: dict) -> list[dict]:
    bible = validate_bible(bible_data, 1)
    return validate_segments(segments, PLAN, [c["id"] for c in bible["characters"]],
                             [loc["name"] for loc in bible["locations"]])


def test_the_offline_writer_passes_every_check(story):
    assert len(_check(*story)) == 3


def _one_line_ten_times(segments):
    speaker = segments[0]["dialogue"][0]["character"]
    segments[0]["dialogue"] = [{"character": speaker, "line": "I have to find the map."}] * 10


def _one_line_in_every_segment(segments):
    for seg in segments:
        seg["dialogue"][0]["line"] = "The storm is coming, Mara!"


@pytest.mark.parametrize("repeat, message", [
    (_one_line_ten_times, r"segment 1: dialogue 2 repeats dialogue 1 word for word "
                          r"\('I have to find the map\.'\): write each line once"),
    (_one_line_in_every_segment, r"'the storm is coming mara' is said 3 times in this set "
                                 r"\(segments 1, 2, 3\): write new lines"),
], ids=["within-a-segment", "across-a-set"])
def test_a_repeated_dialogue_line_is_rejected(story, repeat, message):
    bible_data, segments = copy.deepcopy(story)
    repeat(segments["segments"])
    with pytest.raises(InvalidModelOutput, match=message):
        _check(bible_data, segments)


def test_a_short_line_may_recur_across_a_set(story):
    bible_data, segments = copy.deepcopy(story)
    for seg in segments["segments"]:
        seg["dialogue"][0]["line"] = "Run!"
    assert len(_check(bible_data, segments)) == 3


def test_a_location_that_is_no_location_of_the_bible_is_rejected(story):
    bible_data, segments = copy.deepcopy(story)
    segments["segments"][1]["location"] = "Lina"
    with pytest.raises(InvalidModelOutput, match=r"segment 2: location 'Lina' is not one of the story "
                                                 r"bible's locations: use one of 'the harbour', "):
        _check(bible_data, segments)


@pytest.mark.parametrize("written", ["The Harbour", "the harbor", "harbour", "THE HARBOUR.",
                                     "the harbour, north pier at night"])
def test_locations_tolerate_case_articles_and_small_spelling_differences(story, written):
    bible_data, segments = copy.deepcopy(story)
    segments["segments"][0]["location"] = written
    assert _check(bible_data, segments)[0]["location"] == written


def test_name_matching():
    assert same_name("The Old Station", "old station") and same_name("the archive", "the archives")
    assert not same_name("Lina", "the harbour")
    assert known_name("INT. the archive - reading room", ["the archive"])
    assert not known_name("harbourmaster's office", ["the harbour"])


def test_the_same_location_name_three_times_is_rejected(story):
    bible_data = copy.deepcopy(story[0])
    bible_data["locations"] = [{"name": "Lighthouse", "description": "white tower on the rocks"},
                               {"name": "lighthouse", "description": "a lamp room full of brass"},
                               {"name": "The Lighthouse", "description": "stairs that spiral upwards"}]
    with pytest.raises(InvalidModelOutput, match=r"story bible: location name 'Lighthouse' is used 3 times "
                                                 r"\(locations 1, 2 and 3\): give each location its own "
                                                 r"name, once"):
        validate_bible(bible_data, 1)


def test_the_same_character_name_twice_is_rejected(story):
    bible_data = copy.deepcopy(story[0])
    bible_data["characters"][1]["name"] = bible_data["characters"][0]["name"].upper()
    with pytest.raises(InvalidModelOutput, match=r"character name .* is used 2 times \(characters 1 and 2\)"):
        validate_bible(bible_data, 1)


def test_a_mood_copied_from_the_schema_description_is_rejected(story):
    bible_data, segments = copy.deepcopy(story)
    description = set_json_schema(PLAN, ["a"])["properties"]["segments"]["items"]["properties"]["mood"][
        "description"]
    assert description == DESCRIPTIONS["mood"]
    segments["segments"][2]["mood"] = description
    with pytest.raises(InvalidModelOutput, match=r"segment 3: 'mood' is 'the feeling of this shot in a few "
                                                 r"words', the schema's description of a field: write this "
                                                 r"mood itself"):
        _check(bible_data, segments)


def test_a_bible_field_copied_from_its_description_is_rejected(story):
    bible_data = copy.deepcopy(story[0])
    bible_data["tone"] = "Genre and mood."
    with pytest.raises(InvalidModelOutput, match="'tone' is 'Genre and mood.', the schema's description"):
        validate_bible(bible_data, 1)


def test_every_mode_carries_the_limits_no_grammar_enforces():
    for mode in ("json_schema", "json_object", "prompt"):
        text = schema_instructions(mode, set_json_schema(SetPlan(2, 4, 6), ["mara"], ["the archive"]))
        assert "segments: exactly 3 items; segment_number: 4 to 6; location: 2-160 characters" in text
        assert "mood: 2-80 characters; duration_seconds: 1 to 120." in text
    bible = schema_instructions("json_schema", bible_json_schema(2))
    assert "characters: 1-12 items" in bible and "set_synopses: exactly 2 items" in bible
    assert len(bible) < 600  # short: the schema itself is not repeated in json_schema mode
    compact = schema_instructions("json_object", bible_json_schema(2), compact=True)
    assert DESCRIPTIONS["title"] not in compact and len(compact) < len(schema_instructions("json_object",
                                                                                   bible_json_schema(2)))


def test_an_export_says_how_a_set_failed_and_how_to_retry_it():
    script = {"job_id": "j1", "state": "partial", "story_title": "T", "segments": [], "missing_sets": [1, 2],
              "missing_notes": {"1": "Set 1 failed after 4 attempts; retry with movie-gen retry j1 "
                                     "(or POST /retry-failed-story-sets)"}}
    text = to_fountain(script)
    assert "[[Set 1 failed after 4 attempts; retry with movie-gen retry j1" in text
    assert "> SET 1 FAILED AFTER 4 ATTEMPTS; RETRY WITH MOVIE-GEN RETRY J1" in text
    assert "[[Set 2 missing: not available]]" in text and "RETRY PENDING" not in text
