"""One-line explanations of each signal, shown beside it in the report (unknown names get none)."""

from __future__ import annotations

DESCRIPTIONS = {
    "loss_score": "cross-entropy of the given label under the final model",
    "margin_score": "how much the final model prefers another class over the given label (logit gap)",
    "el2n_score": "EL2N (Paul et al. 2021): error-vector norm early in training, averaged over seeds",
    "grand_score": "GraNd (Paul et al. 2021): per-example gradient norm early in training",
    "confidently_wrong_score": "confidence of the prediction when it is not the given label",
    "self_influence_score": "TracIn self-influence (Pruthi et al. 2020): how much the example pushes its own loss down",
    "vog_score": "Variance of Gradients (Agarwal et al. 2022): instability of the input gradient over checkpoints",
    "forgetting_score": "forgetting events (Toneva et al. 2019): learned, then got wrong again, during training",
    "low_confidence_score": "data maps (Swayamdipta et al. 2020): low mean probability of the given label during training",
    "variability_score": "data maps: variability of that probability over epochs (ambiguous examples)",
    "outlier_score": "distance to the nearest training examples in the model's embedding (atypical inputs)",
    "input_outlier_score": "distance to the nearest training examples in raw input space",
    "cie_score": "Compression Identified Exemplar (Hooker et al. 2019): compressed and dense models disagree",
    "flip_score": "the compressed model's prediction differs from the dense model's",
}


def describe(column: str) -> str:
    return DESCRIPTIONS.get(column, "")


HOW_TO_READ = {
    "label": "A long right tail holds rows whose given label the models struggle with: read the top examples' labels first; mislabelled rows gather there.",
    "atypical": "The right tail holds inputs unlike the rest of the data: rare but valid examples, corrupt inputs or out-of-distribution rows.",
    "cie_score": "Non-zero rows are ones where compressed models disagree with the dense ones: often atypical or ambiguous examples the compressed models give up on.",
}


def how_to_read(column: str, family: str) -> str:
    """One sentence on reading a signal's histogram and its top and bottom examples."""
    return HOW_TO_READ.get(column) or HOW_TO_READ.get(family) or (
        "Higher means more worth a look: the top examples are the ones this signal would have you review first, the bottom ones the most ordinary."
    )
