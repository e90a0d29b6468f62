"""Evaluation scores against values worked out by hand."""

import pytest

from serving.engine.metrics import accuracy, confusion_matrix, exact_match, macro_f1, rouge_l


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("billing", "billing"),
        ("  Billing. ", "billing"),
        ("Yes!!", "yes"),
        ("Ship  it\ntoday?", "ship it today"),
        ("STRASSE", "straße"),  # casefold, not just lower
    ],
)
def test_exact_match_ignores_case_spacing_and_trailing_punctuation(prediction, reference):
    assert exact_match(prediction, reference)


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [("billing", "shipping"), ("bill ing", "billing"), ("billing, please", "billing"), ("", "x")],
)
def test_exact_match_still_tells_different_answers_apart(prediction, reference):
    assert not exact_match(prediction, reference)


def test_rouge_l_is_the_f1_of_the_longest_common_subsequence():
    # LCS of "the cat sat on the mat" and "the cat was on the mat" is
    # "the cat on the mat": 5 of 6 words each way, so P = R = F1 = 5/6.
    assert rouge_l("The cat sat on the mat", "the cat was on the mat") == pytest.approx(5 / 6)
    # "police killed the gunman" vs "the gunman police killed": LCS 2 ("police killed"),
    # P = R = 2/4, F1 = 0.5.
    assert rouge_l("police killed the gunman", "the gunman police killed") == pytest.approx(0.5)
    # Prediction of 2 words inside a 4-word reference: P = 1, R = 1/2, F1 = 2/3.
    assert rouge_l("refund order", "refund my whole order") == pytest.approx(2 / 3)


def test_rouge_l_of_empty_texts():
    assert rouge_l("", "") == 1.0
    assert rouge_l("", "billing") == 0.0
    assert rouge_l("billing", "") == 0.0
    assert rouge_l("...", "!!") == 1.0  # no words on either side
    assert rouge_l("shipping", "billing") == 0.0


def test_accuracy_is_the_fraction_right():
    assert accuracy(["a", "b", "a", "c"], ["a", "b", "b", "a"]) == 0.5
    assert accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        accuracy(["a", "b", "c"], ["a", "b"])


def test_macro_f1_averages_the_per_label_f1():
    truth = ["pos", "pos", "pos", "neg", "neg", "neu"]
    guess = ["pos", "pos", "neg", "neg", "pos", "pos"]
    # pos: TP 2, predicted 4, actual 3 -> 4/7; neg: TP 1, predicted 2, actual 2 -> 1/2;
    # neu: TP 0 -> 0. Mean: (4/7 + 1/2 + 0) / 3 = 15/42.
    assert macro_f1(truth, guess, ["neg", "neu", "pos"]) == pytest.approx(15 / 42)


def test_macro_f1_leaves_out_labels_that_never_occur():
    # "other" is neither true nor predicted anywhere: its F1 is undefined, not 0.
    assert macro_f1(["a", "b"], ["a", "b"], ["a", "b", "other"]) == 1.0
    assert macro_f1([], [], ["a"]) == 0.0


def test_confusion_matrix_counts_true_label_rows_by_predicted_columns():
    truth = ["neg", "neg", "pos", "pos", "pos"]
    guess = ["neg", "pos", "pos", "pos", "neg"]
    assert confusion_matrix(truth, guess, ["neg", "pos"]) == [[1, 1], [1, 2]]
    assert confusion_matrix(truth, guess, ["pos", "neg"]) == [[2, 1], [1, 1]]


def test_confusion_matrix_refuses_labels_outside_the_list():
    with pytest.raises(ValueError, match="labels not in the label list: maybe"):
        confusion_matrix(["yes"], ["maybe"], ["yes", "no"])
