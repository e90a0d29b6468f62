"""Scores for comparing a fine-tuned model with its base: plain Python, no torch."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")
_TRAILING_PUNCTUATION = ".!?"


def normalise_answer(text: str) -> str:
    """Casefolded, whitespace collapsed, trailing . ! ? dropped: "Billing. " -> "billing"."""
    collapsed = " ".join(text.casefold().split())
    return collapsed.rstrip(_TRAILING_PUNCTUATION).rstrip()


def exact_match(prediction: str, reference: str) -> bool:
    return normalise_answer(prediction) == normalise_answer(reference)


def _longest_common_subsequence(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for word in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if word == other else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: the longest common subsequence of lowercase word tokens.

    Two empty texts agree (1.0); one empty text against a non-empty one scores 0.0.
    """
    predicted = _WORD.findall(prediction.lower())
    expected = _WORD.findall(reference.lower())
    if not predicted and not expected:
        return 1.0
    common = _longest_common_subsequence(predicted, expected)
    if common == 0:
        return 0.0
    precision = common / len(predicted)
    recall = common / len(expected)
    return 2 * precision * recall / (precision + recall)


def accuracy(y_true: list[str], y_pred: list[str]) -> float:
    """The fraction of rows predicted right; 0.0 for no rows."""
    _check_lengths(y_true, y_pred)
    if not y_true:
        return 0.0
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def macro_f1(y_true: list[str], y_pred: list[str], labels: list[str]) -> float:
    """The mean of per-label F1 over the labels that occur (as truth or prediction).

    A label that neither occurs nor is predicted has no defined F1 and is left
    out of the mean (scikit-learn's default label set does the same).
    """
    _check_lengths(y_true, y_pred)
    scores = []
    for label in labels:
        true_positive = sum(t == label and p == label for t, p in zip(y_true, y_pred, strict=True))
        actual = sum(t == label for t in y_true)
        predicted = sum(p == label for p in y_pred)
        if actual == 0 and predicted == 0:
            continue
        # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual); 0 when TP is 0.
        scores.append(2 * true_positive / (predicted + actual))
    return sum(scores) / len(scores) if scores else 0.0


def confusion_matrix(y_true: list[str], y_pred: list[str], labels: list[str]) -> list[list[int]]:
    """matrix[i][j]: rows whose true label is labels[i] and predicted label labels[j]."""
    _check_lengths(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({*y_true, *y_pred} - index.keys())
    if unknown:
        raise ValueError(f"labels not in the label list: {', '.join(unknown)}")
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[index[t]][index[p]] += 1
    return matrix


def _check_lengths(y_true: list, y_pred: list) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
