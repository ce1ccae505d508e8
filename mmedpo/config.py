"""``CurationConfig``: every option of MMedPO's pair curation, with defaults and help text."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.core.errors import HarnessError
from harness.core.options import option_field, shown
from harness.curation.imaging import LESION_NOISE_SCHEDULE, LESION_NOISE_STEP

CURATION_VERSION = "7"  # bump when the curation's output for the same inputs changes
RELEVANCE_SCORERS = ("auto", "consensus", "factcheck", "heuristic")
VISUAL_ITEMS = ("all", "lesion")


@dataclass
class CurationConfig:
    text_pairs: bool = option_field(True, "build textual pairs (same image, hallucinated answer); false = ablation 'no text pairs'")
    visual_pairs: bool = option_field(True, "build visual pairs (same answer, lesion-noised image); false = ablation 'no visual pairs'")
    text_generator: str = option_field("auto", "'sample-and-judge' (the paper: the target model's own samples, judged; needs the model), 'rules' (the verified injector alone, no model) or 'auto' (= sample-and-judge)")
    text_judge: str = option_field("auto", "who picks among the samples (sample-and-judge): 'llm' (the first of judges), 'ground-truth' (offline fact check against the case's labels / reference) or 'auto' (llm when judges are set, else ground-truth)")
    judges: list = option_field([], "judge specs, 'openai:<model>' or 'hf:<path>'; the first also picks/writes hallucinations")
    judge_options: dict = option_field({}, "judge options: flat keys for every judge (e.g. base_url), or {spec: {...}} for one judge")
    single_judge: bool = option_field(False, "score relevance with the first judge only (ablation 'single judge')")
    num_samples: int = option_field(4, "k: answers sampled from the target model per question (sample-and-judge)")
    sample_temperature: float = option_field(1.0, "sampling temperature for the k answers")
    max_new_tokens: int = option_field(64, "longest sampled answer, in tokens")
    judge_retries: int = option_field(2, "re-asks after a malformed judge reply before falling back")
    max_fallback_share: float = option_field(0.0, "share of judged items (text pairs) that may fall back to the offline rules or heuristic when the judge fails after retries; more stops curation with an error (default 0: none)")
    max_rounds: int = option_field(5, "r: consensus rounds (a round = one turn of every judge)")
    localizer: str = option_field("ground-truth", "lesion localizer: 'ground-truth', 'saliency' or a harness.localizers plugin")
    localizer_options: dict = option_field({}, "options passed to the localizer's constructor")
    noise: str = option_field("diffusion", "'diffusion' (paper), 'release' (the released code's blur, mean - std threshold and wrapped N(0, 10) replacement; 'gaussian-replace' is an alias) or 'global' (ablation)")
    noise_step: int = option_field(LESION_NOISE_STEP, "diffusion step k in [0, 999] (the paper does not state k; 500, the midpoint, is also POVID's released value)")
    noise_schedule: str = option_field(LESION_NOISE_SCHEDULE, "diffusion beta schedule: 'linear' (DDPM's, the forward process the paper writes: step 500 keeps signal x 0.279) or 'sigmoid' (VCD's, as POVID's release: x 0.863, which a model that reads the lesion still reads through)")
    noise_threshold: float | None = option_field(None, "release noise: cut on the blurred map; None = the release's mean - std")
    visual_items: str = option_field("all", "which items get a visual pair: 'all' (the release: one per item, normal films included, 1:1 with the text pairs) or 'lesion' (only items whose localizer finds a lesion)")
    normal_film_confidence: float = option_field(0.2, "visual_items=all: the raw score of a normal film's visual pair (its region is a seeded lesion-sized lung region); below the least visible lesion of the suite")
    denial_floor: bool = option_field(True, "sample-and-judge with the ground-truth judge: swap in denials on lesion-case text pairs until their share of denials reaches the base's own greedy denial share, less denial_tolerance")
    denial_tolerance: float = option_field(0.05, "the denial floor's tolerance (a share)")
    relevance: str = option_field("auto", "text-pair scorer: 'consensus' (judges), 'factcheck' (offline: severity of what y_l contradicts), 'heuristic' (offline: weight of the edit kind) or 'auto' (consensus when judges are set, else factcheck)")
    weighting: str = option_field("paper", "'paper' (mean 1, variance 0.1, clip [0.75, 1.25]), 'release' (raw 0-1) or 'none' (all 1)")
    normalize_per_kind: bool = option_field(True, "normalize text and visual scores separately (their tools score on different scales); false = pooled")
    max_items: int | None = option_field(None, "curate only the first N samples (quick runs)")
    batch_size: int = option_field(8, "questions per sampling batch")

    def __post_init__(self) -> None:
        from harness.core.secrets import refuse_secret_options
        from harness.curation.imaging import SCHEDULES
        from mmedpo.noise import NOISE_MODES
        from mmedpo.relevance import NORMALIZATIONS

        if self.noise == "gaussian-replace":  # the name of the release's mode before it was called 'release'
            self.noise = "release"
        if isinstance(self.judges, str):
            self.judges = [j for j in self.judges.split(",") if j]
        self.judges = list(self.judges)
        refuse_secret_options({"judge_options": self.judge_options, "localizer_options": self.localizer_options},
                              "mmedpo")
        checks = [
            (self.text_generator in ("auto", "sample-and-judge", "rules"), "text_generator",
             "expected auto, sample-and-judge or rules"),
            (self.noise in NOISE_MODES, "noise", f"expected one of {', '.join(NOISE_MODES)}"),
            (self.weighting in NORMALIZATIONS, "weighting", f"expected one of {', '.join(NORMALIZATIONS)}"),
            (self.text_judge in ("auto", "llm", "ground-truth"), "text_judge", "expected auto, llm or ground-truth"),
            (self.relevance in RELEVANCE_SCORERS, "relevance", f"expected one of {', '.join(RELEVANCE_SCORERS)}"),
            (self.text_pairs or self.visual_pairs, "text_pairs", "text_pairs and visual_pairs cannot both be off"),
            (self.num_samples >= 1, "num_samples", "must be >= 1"),
            (self.max_rounds >= 1, "max_rounds", "must be >= 1"),
            (0 <= self.noise_step <= 999, "noise_step", "must be in [0, 999]"),
            (self.noise_schedule in SCHEDULES, "noise_schedule", f"expected one of {', '.join(SCHEDULES)}"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (0.0 <= self.max_fallback_share <= 1.0, "max_fallback_share", "must be in [0, 1]"),
            (self.visual_items in VISUAL_ITEMS, "visual_items", f"expected one of {', '.join(VISUAL_ITEMS)}"),
            (0.0 <= self.normal_film_confidence <= 1.0, "normal_film_confidence", "must be in [0, 1]"),
            (0.0 <= self.denial_tolerance <= 1.0, "denial_tolerance", "must be in [0, 1]"),
        ]
        # the form only (the kind is checked when the judge is made): a bad spec fails before any data loads
        bad_judges = [j for j in self.judges if not all(j.partition(":")[::2])]
        checks.append((not bad_judges, "judges", f"a judge is 'openai:<model>' or 'hf:<path>', not "
                                                 f"{', '.join(map(shown, bad_judges))}"))
        for ok, name, problem in checks:
            if not ok:
                raise HarnessError(f"mmedpo option '{name}': {problem} (got {shown(getattr(self, name))})")
        if self.resolved_relevance() == "consensus" and not self.judges:
            raise HarnessError("mmedpo option 'relevance': consensus needs at least one judge (option judges)")
        if self.text_judge == "llm" and not self.judges:
            raise HarnessError("mmedpo option 'text_judge': llm needs a judge (option judges)")

    def resolved_generator(self) -> str:
        """``auto`` is the paper's procedure: the target model's samples, judged."""
        return "sample-and-judge" if self.text_generator == "auto" else self.text_generator

    def resolved_text_judge(self) -> str | None:
        """Who picks among the model's samples: 'llm', 'ground-truth', or None (no sampling: rules)."""
        if self.resolved_generator() != "sample-and-judge":
            return None
        if self.text_judge == "auto":
            return "llm" if self.judges else "ground-truth"
        return self.text_judge

    def floor_applies(self) -> bool:
        """The denial floor needs the base's greedy answers (sample-and-judge) and an offline score for a
        swapped-in denial (not the judges' consensus), so it runs with the ground-truth judge only."""
        return (self.denial_floor and self.resolved_text_judge() == "ground-truth"
                and self.resolved_relevance() != "consensus")

    def resolved_relevance(self) -> str:
        if self.relevance == "auto":
            return "consensus" if self.judges else "factcheck"
        return self.relevance

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> CurationConfig:
        """Build from a dict (YAML config or ``--option key=value`` strings, coerced to each field's type by
        the shared ``harness.core.options.parse_options``: unknown keys get a suggestion)."""
        from harness.core.options import parse_options

        return parse_options("method 'mmedpo'", cls, options)


# Named ablations of the paper (Sec. 4.3), as curation options; combine with commas: "no-visual,no-weights".
ABLATIONS: dict[str, dict[str, Any]] = {
    "no-text": {"text_pairs": False},
    "no-visual": {"visual_pairs": False},
    "no-weights": {"weighting": "none"},
    "single-judge": {"single_judge": True},
    "global-noise": {"noise": "global"},
}


def curation_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Expand an ``ablation`` option (comma-separated names of ``ABLATIONS``) into curation options."""
    options = dict(options or {})
    names = options.pop("ablation", None) or []
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    for name in names:
        if name not in ABLATIONS:
            raise HarnessError(f"unknown mmedpo ablation {shown(name)} (known: {', '.join(ABLATIONS)})")
        options.update(ABLATIONS[name])
    return options
