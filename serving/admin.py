"""Generations, votes and evaluations: the record of what was asked and
answered, for operators to read and search (never to change)."""

from django.contrib import admin

from serving.models import Evaluation, Generation, Vote
from studio.admin_actions import ReadOnlyAdmin


@admin.register(Generation)
class GenerationAdmin(ReadOnlyAdmin):
    list_display = ("id", "owner", "source", "base_model", "task", "status", "created_at",
                    "finished_at")  # fmt: skip
    list_filter = ("status", "source", "task", "base_model")
    list_select_related = ("owner", "base_model")
    search_fields = ("=id", "owner__username", "text")
    date_hierarchy = "created_at"


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "owner", "model_a", "model_b", "winner", "generation_id")
    list_filter = ("winner",)
    list_select_related = ("owner",)
    search_fields = ("owner__username", "model_a", "model_b", "=generation__id")


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "owner", "trigger", "status", "done", "total", "sample_size",
                    "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "trigger")
    list_select_related = ("job__owner",)
    search_fields = ("=id", "job__name", "job__owner__username", "=job__id")

    @admin.display(ordering="job__owner__username")
    def owner(self, evaluation: Evaluation) -> str:
        return evaluation.job.owner.get_username()
