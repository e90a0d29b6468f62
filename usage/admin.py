"""Operators set the price of a device-hour per kind of device, and read
the device time each training attempt held (written by the workers only).

A price change made here is copied into the audit log with the admin's
own log (audit/README.md: "The admin's own log is copied")."""

from django.conf import settings
from django.contrib import admin

from studio.admin_actions import ReadOnlyAdmin
from usage.models import DevicePrice, DeviceUse
from usage.services import prices


@admin.register(DevicePrice)
class DevicePriceAdmin(admin.ModelAdmin):
    list_display = ("device", "price", "note", "updated_at")
    search_fields = ("device", "note")
    fields = ("device", "price_per_hour", "note")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        default = prices.hourly(prices.default_price())
        form.base_fields["price_per_hour"].help_text = (
            f"Per device-hour, in {settings.TAILOR_CURRENCY}. A device with no price here "
            f"costs the default, {default} (TAILOR_PRICE_PER_DEVICE_HOUR). 0: free. A new "
            "price applies to attempts that start after it; past ones keep theirs."
        )
        return form

    @admin.display(description="Price", ordering="price_per_hour")
    def price(self, row: DevicePrice) -> str:
        return prices.hourly(row.price_per_hour)


@admin.register(DeviceUse)
class DeviceUseAdmin(ReadOnlyAdmin):
    list_display = ("job_name", "attempt", "owner", "device", "worker", "started_at",
                    "ended_at", "seconds")  # fmt: skip
    list_filter = ("device",)
    list_select_related = ("owner",)
    search_fields = ("job_name", "owner__username", "worker", "=job__id")
    date_hierarchy = "started_at"
