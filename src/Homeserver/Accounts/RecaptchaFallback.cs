using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Spec: user-interactive authentication, "Fallback", for <c>m.login.recaptcha</c>: a page that shows the challenge
/// (Google's widget) and posts its answer back; an answer the siteverify API accepts completes the session's stage,
/// and the page then tells its opener, as the spec's fallback pages do.
/// </summary>
public sealed class RecaptchaFallback(UserInteractiveAuth uia, RecaptchaVerifier recaptcha, HomeserverConfig config) : IEndpoints
{
    /// <summary>Where the widget's script and frames come from.</summary>
    private const string WidgetOrigins = "https://www.recaptcha.net https://www.gstatic.com";
    private const string Path = $"auth/{AuthTypes.Recaptcha}/fallback/web";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", Path, ShowAsync);
        app.MapV3("POST", Path, SubmitAsync);
    }

    private async Task ShowAsync(HttpContext context) => await ChallengeAsync(context, await LiveSessionAsync(context, context.Query("session")), null);

    private async Task SubmitAsync(HttpContext context)
    {
        var form = await FormBody.ReadAsync(context, MatrixException.BadJson);
        var session = await LiveSessionAsync(context, form["session"].ToString());
        var response = form["g-recaptcha-response"].ToString();
        if (response.Length == 0 || !await recaptcha.VerifyAsync(response, context.Connection.RemoteIpAddress?.ToString(), context.RequestAborted))
        {
            await ChallengeAsync(context, session, "The captcha was not solved. Please try again.");
            return;
        }
        await uia.CompleteStageAsync(session, AuthTypes.Recaptcha, context.RequestAborted);
        await HtmlResponse.WriteAsync(context, Sso.SsoPages.StageCompleted(), inlineScript: true);
    }

    private async Task<string> LiveSessionAsync(HttpContext context, string session)
    {
        if (!config.Registration.Recaptcha.Enabled)
            throw MatrixException.NotFound("Captchas are not configured on this server.");
        if (session.Length == 0)
            throw MatrixException.MissingParam("session");
        return await uia.LiveSessionAsync(session, context.RequestAborted) is null
            ? throw new MatrixException(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session.")
            : session;
    }

    private Task ChallengeAsync(HttpContext context, string session, string? error) => HtmlResponse.WriteAsync(context, Page("Are you human?",
        Error(error)
        + "<script src=\"https://www.recaptcha.net/recaptcha/api.js\" async defer></script>"
        + $"<form method=\"post\" action=\"web\">{Hidden("session", session)}"
        + $"<div class=\"g-recaptcha\" data-sitekey=\"{Html(config.Registration.Recaptcha.PublicKey!)}\"></div>"
        + "<button type=\"submit\">Continue</button></form>"), externalSources: WidgetOrigins);
}
