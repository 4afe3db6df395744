"""Evaluation: batched generation and the metrics (BLEU, CodeBLEU, exact match, ASR, FTR)."""

from dece.evaluation.generation import generate
from dece.evaluation.metrics import METRICS, asr, bleu, bleu_paper, codebleu, exact_match, ftr, score

__all__ = ["METRICS", "asr", "bleu", "bleu_paper", "codebleu", "exact_match", "ftr", "generate", "score"]
