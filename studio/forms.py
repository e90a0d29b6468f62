from django import forms


class NewTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, so you can tell tokens apart later.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. nightly pipeline"}),
    )
