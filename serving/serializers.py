"""Shapes of the native API's evaluations and generations (for the schema, and requests)."""

from rest_framework import serializers

from serving.models import EvaluationStatus, EvaluationTrigger, GenerationStatus, VoteChoice
from serving.services.evaluations import MAX_SAMPLE_SIZE

PLAIN = "A plain sentence: never an exception's text or a server path."
STAFF_ONLY = "Staff only, on a failure: the exception behind `error`."


class EvaluationSerializer(serializers.Serializer):
    """`evaluation_summary()`, described."""

    id = serializers.UUIDField()
    job = serializers.UUIDField()
    status = serializers.ChoiceField(choices=EvaluationStatus.choices)
    trigger = serializers.ChoiceField(choices=EvaluationTrigger.choices)
    sample_size = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Rows evaluated so far, of `total`.")
    total = serializers.IntegerField()
    error = serializers.CharField(allow_null=True, help_text=PLAIN)
    error_detail = serializers.CharField(required=False, help_text=STAFF_ONLY)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    metrics = serializers.DictField(
        help_text="`base` and `fine_tuned`: accuracy and macro_f1 (classification), or "
        "val_loss, perplexity, exact_match and rouge_l (generation)."
    )
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True)
    rows = serializers.IntegerField(allow_null=True, help_text="Validation rows used.")
    samples = serializers.ListField(
        child=serializers.DictField(),
        help_text="Prompt, reference, base output, fine-tuned output, per sampled row.",
    )


class EvaluationRequestSerializer(serializers.Serializer):
    job = serializers.UUIDField(help_text="A job of yours that has succeeded.")
    sample_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_SAMPLE_SIZE, help_text="Rows to generate for."
    )


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(allow_blank=True)


class GenerationRequestSerializer(serializers.Serializer):
    """What the playground sends; only the shape is read here, `check_request` checks it."""

    models = serializers.ListField(
        child=serializers.CharField(),
        help_text="One base model id and/or up to three fine-tuned model names of that base.",
    )
    messages = MessageSerializer(many=True, required=False, help_text="A chat, for causal models.")
    text = serializers.CharField(
        required=False, allow_blank=True, help_text="A prompt, or the text to classify."
    )
    max_new_tokens = serializers.IntegerField(required=False)
    temperature = serializers.FloatField(required=False)
    top_p = serializers.FloatField(required=False)
    seed = serializers.IntegerField(required=False)
    stop = serializers.ListField(child=serializers.CharField(), required=False)


class PaneResultSerializer(serializers.Serializer):
    model = serializers.CharField()
    label = serializers.CharField()
    text = serializers.CharField(allow_null=True)
    label_probabilities = serializers.DictField(allow_null=True)
    predicted_label = serializers.CharField(allow_null=True)
    prompt_tokens = serializers.IntegerField(allow_null=True)
    completion_tokens = serializers.IntegerField(allow_null=True)
    finish_reason = serializers.CharField(allow_null=True)
    first_token_seconds = serializers.FloatField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_null=True, help_text=PLAIN)
    error_detail = serializers.CharField(required=False, help_text=STAFF_ONLY)


class GenerationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=GenerationStatus.choices)
    source = serializers.CharField()
    task = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    messages = MessageSerializer(many=True)
    text = serializers.CharField(allow_blank=True)
    params = serializers.DictField()
    results = PaneResultSerializer(many=True, help_text="One per model, in order, once done.")
    error = serializers.CharField(allow_null=True, help_text=PLAIN)
    error_detail = serializers.CharField(required=False, help_text=STAFF_ONLY)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class VoteRequestSerializer(serializers.Serializer):
    model_a = serializers.CharField()
    model_b = serializers.CharField()
    winner = serializers.ChoiceField(choices=VoteChoice.choices, help_text="a, b or tie.")


class VoteSerializer(serializers.Serializer):
    generation = serializers.UUIDField(source="generation_id")
    model_a = serializers.CharField()
    model_b = serializers.CharField()
    winner = serializers.CharField()
    created_at = serializers.DateTimeField()
