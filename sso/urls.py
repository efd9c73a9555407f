from django.urls import path

from . import views

urlpatterns = [
    path("authenticate/", views.SignInView.as_view(), name="sso_sign_in"),
    path("callback/", views.CallbackView.as_view(), name="sso_callback"),
]
