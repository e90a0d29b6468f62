"""Sweep pages: start one from the wizard (Sweep instead of Start), the list,
and a sweep's page with its live leaderboard. Thin: the form is read into the
same `sweep` mapping the API takes, and jobs/services/sweeps.py does the work."""

from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs import config as cfg
from jobs.services import lifecycle, sweep_board, sweeps
from jobs.services import sweep_space as space
from jobs.sweep_models import Sweep, SweepMetric, SweepPruner, SweepSampler
from jobs.wizard import JobWizard, WizardInput
from quotas.services import QuotaExceeded


@dataclass
class SweepForm:
    """The wizard's sweep fields as posted, and the errors by input name."""

    values: dict = field(default_factory=dict)  # sweep_param_<key>, sweep_budget, ...
    errors: dict = field(default_factory=dict)

    @classmethod
    def from_post(cls, post) -> "SweepForm":
        names = [f"sweep_param_{key}" for key in space.PARAMETERS]
        names += ["sweep_budget", "sweep_metric", "sweep_sampler", "sweep_pruner"]
        return cls(values={name: post.get(name, "").strip() for name in names})

    def spec(self) -> dict:
        """The API's `sweep` mapping of the form."""
        parameters = {}
        for key in space.PARAMETERS:
            read = space.parse_form_values(self.values.get(f"sweep_param_{key}", ""))
            if read is not None:
                parameters[key] = read
        return {
            "parameters": parameters,
            "budget": self.values.get("sweep_budget", ""),
            "metric": self.values.get("sweep_metric", ""),
            "sampler": self.values.get("sweep_sampler", ""),
            "pruner": self.values.get("sweep_pruner", ""),
        }

    def refuse(self, error: cfg.ConfigError) -> None:
        """Each error under the input it is about (`sweep.parameters.lora_rank.low`
        belongs to sweep_param_lora_rank); the first message per input stays."""
        for problem in error.errors:
            parts = problem.field.split(".")
            if parts[:2] == ["sweep", "parameters"] and len(parts) > 2:
                name = f"sweep_param_{parts[2]}"
            elif parts[0] == "sweep" and len(parts) > 1:
                name = f"sweep_{parts[1]}"
            else:
                name = "sweep_parameters"
            self.errors.setdefault(name, problem.message)


def form_context(form: SweepForm | None = None) -> dict:
    """What templates/jobs/_sweep_fields.html draws."""
    form = form or SweepForm()
    names = {p.key: f"sweep_param_{p.key}" for p in space.PARAMETERS.values()}
    return {
        "sweep_form": form,
        "sweep_parameters": [
            (p, names[p.key], form.values.get(names[p.key], ""), form.errors.get(names[p.key]))
            for p in space.PARAMETERS.values()
        ],
        "sweep_choices": {
            "metric": SweepMetric.choices,
            "sampler": SweepSampler.choices,
            "pruner": SweepPruner.choices,
        },
    }  # fmt: skip


def _render_wizard(request, wizard_input, form, *, errors=None, status=422):
    wizard = JobWizard(request.user, wizard_input, errors=errors)
    context = {"wizard": wizard, "upload_errors": [], "sweep_open": True, **form_context(form)}
    return render(request, "jobs/job_new.html", context, status=status)


@login_required
@require_POST
def sweep_new(request):
    """The wizard's Sweep button: its job settings and its sweep fields."""
    wizard_input = WizardInput.from_post(request.POST)
    form = SweepForm.from_post(request.POST)
    try:
        draft = lifecycle.check_start_job(request.user, wizard_input.document())
    except cfg.ConfigError as error:
        return _render_wizard(request, wizard_input, form, errors=error.as_dict())
    try:
        plan = space.read_sweep(form.spec(), task=draft.model.task)
    except cfg.ConfigError as error:
        form.refuse(error)
        return _render_wizard(request, wizard_input, form)
    try:
        sweep = sweeps.create_sweep(request.user, draft, plan)
    except QuotaExceeded as refused:
        messages.error(request, refused.message)
        return _render_wizard(request, wizard_input, form, status=403)
    messages.success(request, f"Sweep “{sweep.name}” started: {plan.budget} runs at most.")
    return redirect("sweep-detail", sweep_id=sweep.pk)


@login_required
@require_GET
def sweep_list(request):
    page = Paginator(Sweep.objects.for_user(request.user), 25).get_page(request.GET.get("page"))
    rows = [(sweep, sweep_board.progress(sweep)) for sweep in page]
    return render(request, "jobs/sweep_list.html", {"page": page, "rows": rows})


@login_required
@require_GET
def sweep_detail(request, sweep_id):
    """The sweep's page; htmx polls its board alone while the sweep runs."""
    sweep = sweeps.access_sweep(request.user, sweep_id)
    context = {
        "sweep": sweep,
        "board": sweep_board.leaderboard(sweep),
        "progress": sweep_board.progress(sweep),
        "parameters": [(space.PARAMETERS[key], spec) for key, spec in sweep.space.items()],
    }
    template = "jobs/sweep_detail.html"
    if request.htmx:
        template += "#board"
    return render(request, template, context)


@login_required
@require_POST
def sweep_cancel(request, sweep_id):
    sweep = sweeps.access_sweep(request.user, sweep_id)
    if sweep.is_running:
        sweeps.cancel_sweep(sweep)
        messages.success(request, "Sweep cancelled; its finished runs stay.")
    else:
        messages.error(request, "The sweep has already ended.")
    return redirect("sweep-detail", sweep_id=sweep.pk)
