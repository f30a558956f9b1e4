from pathlib import Path

import pytest

from training.data.babi import BabiData, parse_task_lines, read_babi, repeat_tasks, split_by_task

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "babi"


def test_reads_every_task_file_and_counts_malformed_lines():
    data = read_babi(FIXTURES)
    assert data.files == [
        "qa1_single-supporting-fact_train.txt",
        "qa8_lists-sets_train.txt",
        "qa19_path-finding_train.txt",
    ]
    # no number, a question without an answer, an invalid byte sequence
    assert data.bad_lines == 3
    assert len(data.bad_line_samples) == 3
    assert {example.task for example in data.examples} == {1, 8, 19}


def test_story_is_every_statement_before_the_question():
    examples = read_babi(FIXTURES).examples
    second = [example for example in examples if example.task == 1][1]
    assert second.question == "Where is Daniel?"
    assert second.answer == "hallway"
    assert second.statements == (
        "Mary moved to the bathroom.",
        "John went to the hallway.",
        "Daniel went back to the hallway.",
        "Sandra moved to the garden.",
    )
    assert second.article.startswith("Mary moved to the bathroom. John went")


def test_numbering_restart_starts_a_new_story():
    examples = [example for example in read_babi(FIXTURES).examples if example.task == 1]
    third = examples[2]
    assert third.statements == ("Sandra travelled to the office.", "John journeyed to the kitchen.")
    assert third.story_key != examples[1].story_key
    # the malformed line in the middle of a story does not end the story
    assert examples[4].statements[-1] == "Mary went to the garden."
    assert len(examples[4].statements) == 3


def test_multi_word_answers_are_one_label():
    answers = {example.answer for example in read_babi(FIXTURES).examples}
    assert {"football,apple", "apple,milk", "e,n", "s,w"} <= answers


def test_empty_supporting_facts_and_blank_lines_are_fine():
    data = BabiData()
    parse_task_lines(6, ["1 Mary went home.", "", "2 Is Mary home? \tyes\t"], data)
    assert data.bad_lines == 0
    assert data.examples[0].answer == "yes"


def test_max_examples_caps_questions_per_task():
    data = read_babi(FIXTURES, max_examples=2)
    assert [example.task for example in data.examples] == [1, 1, 8, 8, 19, 19]


def test_split_is_stratified_by_task_grouped_by_story_and_seeded():
    data = BabiData()
    for task in (1, 2):
        lines = []
        for _ in range(40):
            lines += ["1 Mary went to the kitchen.", "2 Where is Mary? \tkitchen\t1"]
            lines += ["3 Where is Mary? \tkitchen\t1"]
        parse_task_lines(task, lines, data)
    train, validation = split_by_task(data.examples, 0.25, seed=3)
    assert len(train) + len(validation) == 160
    for task in (1, 2):
        assert sum(example.task == task for example in validation) == 20
    train_stories = {example.story_key for example in train}
    assert not train_stories & {example.story_key for example in validation}
    again_train, again_validation = split_by_task(data.examples, 0.25, seed=3)
    assert again_validation == validation
    assert again_train == train


def test_supporting_facts_are_statement_indices_skipping_question_lines():
    examples = read_babi(FIXTURES).examples
    qa1 = [example for example in examples if example.task == 1]
    assert qa1[0].supporting == (0,)  # line 1
    assert qa1[1].supporting == (2,)  # line 4: the question on line 3 is no statement
    path = [example for example in examples if example.task == 19]
    assert path[1].supporting == (1, 0)  # "2 1": the file's order is kept
    lists = [example for example in examples if example.task == 8]
    assert lists[1].supporting == (1, 3)  # "2 5" after the question on line 4
    assert lists[3].supporting == ()  # "nothing" has no supporting fact


def test_supporting_facts_naming_no_statement_are_dropped():
    data = BabiData()
    lines = [
        "1 Mary went home.",
        "2 Where is Mary? \thome\t1",
        "3 John went out.",
        "4 Where is John? \tout\t3 2 9 x",  # 2 is a question, 9 is past the question
    ]
    parse_task_lines(1, lines, data)
    assert [example.supporting for example in data.examples] == [(0,), (1,)]


def test_repeat_tasks_copies_the_named_tasks_examples_in_place():
    examples = read_babi(FIXTURES).examples
    repeated = repeat_tasks(examples, {"qa19": 3, "qa8": 1})
    tasks = [example.task for example in examples]
    assert [example.task for example in repeated].count(19) == 3 * tasks.count(19)
    assert [example.task for example in repeated].count(1) == tasks.count(1)
    assert repeated[: tasks.count(1)] == [e for e in examples if e.task == 1]
    first = repeated.index(next(e for e in examples if e.task == 19))
    assert repeated[first + 1] == repeated[first + 2] == repeated[first]
    assert repeat_tasks(examples, {}) == examples


@pytest.mark.parametrize(
    ("repeats", "message"),
    [
        ({"qa21": 2}, "keys are qa1 to qa20"),
        ({"19": 2}, "keys are qa1 to qa20"),
        ({"qa19": 0}, "must be an integer >= 1"),
        ({"qa19": 1.5}, "must be an integer >= 1"),
        ({"qa19": True}, "must be an integer >= 1"),
        ([("qa19", 3)], "must be a mapping"),
    ],
)
def test_repeat_tasks_refuses_bad_options(repeats, message):
    with pytest.raises(ValueError, match=message):
        repeat_tasks(read_babi(FIXTURES).examples, repeats)


@pytest.mark.parametrize(
    "lines",
    [
        ["1 Mary moved to the bathroom.", "\u00b2 Where is Mary?\tbathroom\t1"],
        ["1 Mary moved to the bathroom.", "2 Where is Mary?\tbathroom\t1\u00b2"],
    ],
)
def test_a_non_ascii_digit_is_a_bad_line_or_ignored_not_a_crash(lines):
    # "²".isdigit() is True and int("²") a ValueError: the whole run stopped with a traceback.
    data = BabiData()
    parse_task_lines(1, lines, data)
    assert len(data.examples) + data.bad_lines == 1
    assert all(example.supporting == () for example in data.examples)


def test_crlf_trailing_spaces_and_no_final_newline(tmp_path):
    (tmp_path / "qa8_lists-sets_train.txt").write_bytes(
        b"1 Mary got the milk. \r\n2 Mary took the football.\r\n"
        b"3 What is Mary carrying? \tmilk,football \t1 2"
    )
    (example,) = read_babi(tmp_path).examples
    assert (example.question, example.answer, example.supporting) == (
        "What is Mary carrying?",
        "milk,football",
        (0, 1),
    )


def test_the_archive_folder_names_its_variant_folders(tmp_path):
    # tasks_1-20_v1-1/ holds en/ and en-10k/ (same file names): the message says to pick one.
    for variant in ("en", "en-10k"):
        (tmp_path / variant).mkdir()
        (tmp_path / variant / "qa1_single-supporting-fact_train.txt").write_text("1 A.\n")
    with pytest.raises(FileNotFoundError, match="pick one of its folders en, en-10k"):
        read_babi(tmp_path)
    assert read_babi(tmp_path / "en-10k").files == ["qa1_single-supporting-fact_train.txt"]


def test_a_statement_holding_a_tab_is_a_bad_line_not_a_question():
    data = BabiData()
    lines = ["1 Mary went\thome.", "2 John went to the hallway.", "3 Where is John?\thallway\t2"]
    parse_task_lines(1, lines, data)
    assert data.bad_lines == 1
    (example,) = data.examples
    assert (example.question, example.statements) == (
        "Where is John?",
        ("John went to the hallway.",),
    )
