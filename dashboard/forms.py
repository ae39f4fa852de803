"""The announcement form of the dashboard: what ``notifications.services.announce`` takes."""
from django import forms

from notifications.models import Announcement


class AnnouncementForm(forms.Form):
    kind = forms.ChoiceField(choices=Announcement.Kind.choices, initial=Announcement.Kind.MAINTENANCE)
    level = forms.ChoiceField(
        choices=[("", "Default (warning for maintenance, info otherwise)"), *Announcement.Level.choices],
        required=False,
    )
    title = forms.CharField(max_length=120, required=False)
    message = forms.CharField(max_length=1000, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))

    def clean_message(self) -> str:
        message = self.cleaned_data["message"].strip()
        if not message:
            raise forms.ValidationError("An announcement needs a message.")
        return message
