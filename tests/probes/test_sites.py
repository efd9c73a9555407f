"""Sites from the environment (probes/sites.py): which site each target is at, and
which site (so which Celery queue) a command goes to. Plain Python: the env is a
dict given to the functions."""

from __future__ import annotations

import pytest

from probes import sites, targets
from probes.sites import SiteConfigError, SiteConflict
from tests.probes.bound import bind


def test_a_target_variable_names_its_site():
    env = {"TARGET_SITE_DATABASE_URL": "EU "}
    assert sites.site_map(env) == {"DATABASE_URL": "eu"}


def test_the_map_names_variables_and_runbook_hosts():
    env = {"TARGET_SITES": "DATABASE_URL=eu, TARGET_REDIS_URL=eu ,Api.Yomira.App=us"}
    assert sites.site_map(env) == {
        "DATABASE_URL": "eu",
        "REDIS_URL": "eu",  # a leading TARGET_ is accepted, as in TARGET_PG_HOSTS
        "api.yomira.app": "us",
    }


def test_both_forms_agreeing_is_fine():
    env = {"TARGET_SITES": "DATABASE_URL=eu", "TARGET_SITE_DATABASE_URL": "eu"}
    assert sites.site_map(env) == {"DATABASE_URL": "eu"}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"TARGET_SITES": "DATABASE_URL"},
            "TARGET_SITES: 'DATABASE_URL' is not NAME=site",
        ),
        ({"TARGET_SITES": "DATABASE_URL="}, "TARGET_SITES: 'DATABASE_URL=' is not"),
        ({"TARGET_SITES": "=eu"}, "TARGET_SITES: '=eu' is not NAME=site"),
        ({"TARGET_SITES": "not a name=eu"}, "TARGET_SITES: 'not a name' is neither"),
        (
            {"TARGET_SITES": "DATABASE_URL=e u"},
            "TARGET_SITES: 'e u' is not a site name",
        ),
        (
            {"TARGET_SITE_REDIS_URL": "../x"},
            "TARGET_SITE_REDIS_URL: '../x' is not a site",
        ),
        ({"TARGET_SITE_": "eu"}, "TARGET_SITE_: '' is not a target variable"),
        ({"TARGET_SITE_REDIS_URL": "x" * 41}, "TARGET_SITE_REDIS_URL: 'xxxx"),
        (
            {"TARGET_SITES": "REDIS_URL=eu", "TARGET_SITE_REDIS_URL": "us"},
            "TARGET_SITE_REDIS_URL: REDIS_URL is at site us, but TARGET_SITES puts "
            "it at site eu",
        ),
        (
            {"TARGET_SITES": "REDIS_URL=eu,REDIS_URL=us"},
            "TARGET_SITES: REDIS_URL is at site us, but TARGET_SITES puts it at site eu",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env, names):
    with pytest.raises(SiteConfigError) as refused:
        sites.site_map(env)
    assert str(refused.value).startswith(names)


def test_an_empty_setting_is_no_site():
    assert sites.site_map({"TARGET_SITE_REDIS_URL": " ", "TARGET_SITES": " , "}) == {}


def test_a_command_goes_to_the_site_of_its_target():
    env = {"TARGET_SITE_REDIS_URL": "eu"}
    assert sites.site_of(bind("redis-cli ping"), env) == "eu"  # REDIS_URL by default
    assert sites.site_of(bind('psql "${DATABASE_URL}" -c "SELECT 1"'), env) == ""
    assert sites.queue_for("eu") == "site.eu"
    assert sites.queue_for("") is None  # the default queue, as before sites


def test_a_runbook_host_names_the_site_of_its_requests():
    env = {"TARGET_SITES": "api.yomira.app=eu"}
    assert sites.site_of(bind("curl https://api.yomira.app/health/ready"), env) == "eu"
    assert sites.site_of(bind("curl https://cdn.yomira.app/x.webp"), env) == ""


def test_a_target_at_no_site_goes_with_the_others():
    """A token is not a place: the request goes where its host is."""
    command = bind(
        'curl -X POST -H "Authorization: Bearer ${ADMIN_TOKEN}" '
        "https://api.yomira.app/api/v1/admin/crawler/pause"
    )
    assert "ADMIN_TOKEN" in command.variables
    assert sites.site_of(command, {"TARGET_SITES": "api.yomira.app=eu"}) == "eu"


def test_targets_at_two_sites_are_a_conflict_that_says_which():
    command = bind(
        'curl -H "Authorization: Bearer ${ADMIN_TOKEN}" '
        "https://api.yomira.app/api/v1/admin/settings"
    )
    env = {"TARGET_SITES": "api.yomira.app=eu", "TARGET_SITE_ADMIN_TOKEN": "us"}
    with pytest.raises(SiteConflict) as refused:
        sites.site_of(command, env)
    message = str(refused.value)
    assert "ADMIN_TOKEN at site us" in message
    assert "api.yomira.app at site eu" in message
    assert "no one worker reaches them all" in message


def test_a_worker_reads_its_site():
    assert sites.worker_site({"WORKER_SITE": " EU"}) == "eu"
    assert sites.worker_site({}) == ""
    with pytest.raises(SiteConfigError, match="^WORKER_SITE: 'e/u'"):
        sites.worker_site({"WORKER_SITE": "e/u"})
    assert sites.site_of_queue("site.eu") == "eu"
    assert sites.site_of_queue("celery") == ""


def test_site_settings_are_not_masked_as_secrets(monkeypatch):
    """Site names appear in the warnings: masking them would blank those out."""
    monkeypatch.setenv("TARGET_SITE_DATABASE_URL", "private-net")
    monkeypatch.setenv("TARGET_SITES", "REDIS_URL=private-net")
    monkeypatch.setenv("TARGET_SITEMAP_TOKEN", "a-real-secret")
    values = targets.secret_values()
    assert "private-net" not in values
    assert "REDIS_URL=private-net" not in values
    assert "a-real-secret" in values  # only the site settings are left out


def test_the_processs_site_map_follows_its_environment(monkeypatch):
    """Read once per environment (every checklist page asks), and afresh as soon
    as a variable is set, changed or removed."""
    for variable in [v for v in targets.os.environ if sites.is_site_setting(v)]:
        monkeypatch.delenv(variable)
    assert sites.site_map() == {}
    monkeypatch.setenv("TARGET_SITE_DATABASE_URL", "eu")
    assert sites.site_map() == {"DATABASE_URL": "eu"}
    monkeypatch.setenv("TARGET_SITE_DATABASE_URL", "us")
    assert sites.site_map() == {"DATABASE_URL": "us"}
    kept = sites.site_map()
    kept["REDIS_URL"] = "elsewhere"  # the caller's copy, not the process's
    assert sites.site_map() == {"DATABASE_URL": "us"}
    monkeypatch.setenv("TARGET_SITES", "nonsense")
    with pytest.raises(SiteConfigError):
        sites.site_map()
    monkeypatch.delenv("TARGET_SITES")
    monkeypatch.delenv("TARGET_SITE_DATABASE_URL")
    assert sites.site_map() == {}
