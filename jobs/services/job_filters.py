"""The jobs list page's filters (tag, base model, dataset, status, starred) and
its grouping by dataset.

Contract:
- `JobFilters.from_query(params)` reads the page's query string leniently:
  a value that cannot be a filter (an unknown status, a dataset id that is
  not a UUID) is dropped, and the page lists as if it were not given. The
  API reads the same names strictly, answering 400 (jobs/api.py).
- `JobFilters.apply(jobs)` narrows a queryset the caller has already scoped
  to the user (`FineTuneJob.objects.for_user`), so a filter never reaches
  past what the user may see. The API's list (jobs/api.py `filter_jobs`)
  narrows through it too, after its strict reading.
- `filter_choices(jobs)` offers only the tags, base models and datasets
  found on `jobs`: the user's own (staff: everyone's, as the list shows).
- `group_by_dataset(rows, jobs)` cuts a page of rows, ordered by
  `GROUPED_ORDER`, into one group per dataset, each with its count among
  all of `jobs` (not only the page's).
"""

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count

from jobs.models import FineTuneJob, JobStatus, TaggedJob
from jobs.services.organise import read_yes_no

GROUP_BY_DATASET = "dataset"
# Grouped, a dataset's jobs follow one another across pages, newest first.
GROUPED_ORDER = ("dataset__name", "dataset_id", "-created_at")


def with_tag(jobs, tag: str):
    """The jobs carrying `tag`, whatever its case (a subquery: no row twice)."""
    tagged = TaggedJob.objects.filter(tag__name__iexact=tag).values("content_object_id")
    return jobs.filter(pk__in=tagged)


@dataclass(frozen=True)
class JobFilters:
    tag: str = ""
    base_model: str = ""
    dataset: str = ""
    status: str = ""
    starred: bool | None = None  # None: starred or not
    group: str = ""

    @classmethod
    def from_query(cls, params) -> "JobFilters":
        status = params.get("status", "")
        dataset = params.get("dataset", "").strip()
        try:
            dataset = str(uuid.UUID(dataset)) if dataset else ""
        except ValueError:
            dataset = ""
        return cls(
            tag=" ".join(params.get("tag", "").split()),
            base_model=params.get("base_model", "").strip(),
            dataset=dataset,
            status=status if status in JobStatus.values else "",
            starred=True if read_yes_no(params.get("starred", "")) else None,
            group=GROUP_BY_DATASET if params.get("group") == GROUP_BY_DATASET else "",
        )

    @property
    def any(self) -> bool:
        """Whether any filter narrows the list (grouping does not)."""
        narrowing = (self.tag, self.base_model, self.dataset, self.status)
        return any(narrowing) or self.starred is not None

    @property
    def grouped(self) -> bool:
        return self.group == GROUP_BY_DATASET

    def apply(self, jobs):
        if self.tag:
            jobs = with_tag(jobs, self.tag)
        if self.base_model:
            jobs = jobs.filter(base_model_id=self.base_model)
        if self.dataset:
            jobs = jobs.filter(dataset_id=self.dataset)
        if self.status:
            jobs = jobs.filter(status=self.status)
        if self.starred is not None:
            jobs = jobs.filter(starred=self.starred)
        return jobs.order_by(*GROUPED_ORDER) if self.grouped else jobs

    def matches(self, job: FineTuneJob) -> bool:
        """Whether `job` is one the list shows with these filters."""
        if not self.any:
            return True
        return self.apply(FineTuneJob.objects.filter(pk=job.pk)).exists()

    def query(self) -> str:
        """The filters as a query string (no page), for links that keep them."""
        pairs = {
            "tag": self.tag, "base_model": self.base_model, "dataset": self.dataset,
            "status": self.status, "starred": "1" if self.starred else "", "group": self.group,
        }  # fmt: skip
        return urlencode({name: value for name, value in pairs.items() if value})


@dataclass(frozen=True)
class FilterChoices:
    tags: list[str]
    base_models: list[tuple[str, str]]  # (id, display name)
    datasets: list[tuple[str, str]]  # (id, name)


def filter_choices(jobs) -> FilterChoices:
    """What the filter bar offers: what `jobs` (already scoped to the user) carry."""
    jobs = jobs.order_by()
    tags = TaggedJob.objects.filter(content_object__in=jobs).values_list("tag__name", flat=True)
    models = jobs.values_list("base_model_id", "base_model__display_name").distinct()
    datasets = jobs.values_list("dataset_id", "dataset__name").distinct()
    return FilterChoices(
        tags=sorted(set(tags), key=str.casefold),
        base_models=sorted(models, key=lambda pair: pair[1].casefold()),
        datasets=sorted(((str(i), name) for i, name in datasets), key=lambda p: p[1].casefold()),
    )


@dataclass
class JobGroup:
    dataset_id: str
    name: str
    count: int  # the dataset's jobs among all those listed, not only this page's
    jobs: list


def group_by_dataset(rows, jobs) -> list[JobGroup]:
    """The page's `rows` (in GROUPED_ORDER) as one group per dataset."""
    counts = dict(jobs.order_by().values_list("dataset_id").annotate(n=Count("id")))
    groups: list[JobGroup] = []
    for job in rows:
        if not groups or groups[-1].dataset_id != str(job.dataset_id):
            group = JobGroup(str(job.dataset_id), job.dataset.name, counts[job.dataset_id], [])
            groups.append(group)
        groups[-1].jobs.append(job)
    return groups
