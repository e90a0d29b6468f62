from django import forms

from datasets_app import engine
from datasets_app.models import SplitMode

FORMAT_CHOICES = [("", "Detect automatically"), *engine.FORMAT_LABELS.items()]
MAPPABLE_FIELDS = sorted({field for fields in engine.FORMAT_FIELDS.values() for field in fields})


class UploadForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL, JSON, CSV, TSV or Parquet.",
        widget=forms.ClearableFileInput(attrs={"accept": engine.ACCEPT}),
    )
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file's name.")
    validation_file = forms.FileField(
        required=False,
        help_text="Optional. Without one, 10 % of the rows are held out.",
        widget=forms.ClearableFileInput(attrs={"accept": engine.ACCEPT}),
    )


class RenameForm(forms.Form):
    name = forms.CharField(max_length=200)


class SettingsForm(forms.Form):
    """How to read the file (format, column names) and how to split it."""

    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False)
    split_mode = forms.ChoiceField(choices=SplitMode.choices)
    validation_fraction = forms.FloatField(
        min_value=engine.MIN_VALIDATION_FRACTION, max_value=engine.MAX_VALIDATION_FRACTION
    )
    split_seed = forms.IntegerField()
    skip_invalid_rows = forms.BooleanField(
        required=False, label="Skip rows with problems and use the rest"
    )

    def __init__(self, *args, columns=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—"), *[(column, column) for column in columns]]
        for field in MAPPABLE_FIELDS:
            self.fields[f"map_{field}"] = forms.ChoiceField(
                choices=choices, required=False, label=f"Column for “{field}”"
            )

    def mapping(self) -> dict[str, str]:
        return {
            field: self.cleaned_data[f"map_{field}"]
            for field in MAPPABLE_FIELDS
            if self.cleaned_data.get(f"map_{field}")
        }

    def mapping_fields(self):
        return [self[f"map_{field}"] for field in MAPPABLE_FIELDS]
