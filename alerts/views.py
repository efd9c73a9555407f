from django.http import HttpResponse


def _todo(request, **kwargs):  # noqa: ANN001, ANN003, ANN202
    return HttpResponse(status=501)


alertmanager_hook = grafana_hook = alert_list = triage_pick = triage_dismiss = _todo
