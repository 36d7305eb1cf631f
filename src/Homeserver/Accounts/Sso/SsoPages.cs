using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// The small pages a browser sees during single sign-on (server-rendered, no script but the UIA fallback's), in the
/// same page frame as the OAuth sign-in pages.
/// </summary>
public static class SsoPages
{
    /// <summary>
    /// After a login at the provider: a link, not an automatic redirect, hands the login token to the client, so a
    /// link crafted by someone else cannot silently sign the user in to their client (as Synapse asks).
    /// </summary>
    public static string ContinueToClient(string serverName, string userId, string clientUrl) => Page("Continue to your account",
        $"<p>You are signed in to <b>{Html(serverName)}</b> as <b>{Html(userId)}</b>.</p>"
        + $"<p>Continue only if you started this sign-in from your Matrix client at <b>{Html(HostOf(clientUrl))}</b>.</p>"
        + $"<p><a href=\"{Html(clientUrl)}\">Continue</a></p>");

    /// <summary>The UIA fallback's start: a link to the provider, coming back to complete the session's stage.</summary>
    public static string ConfirmIdentity(string idpName, string providerUrl) => Page("Confirm it's you",
        $"<p>To continue, confirm your identity with {Html(idpName)}.</p><p><a href=\"{Html(providerUrl)}\">Continue with {Html(idpName)}</a></p>");

    /// <summary>The stage is done: the page tells its opener, as the spec's fallback pages do.</summary>
    public static string StageCompleted() => Page("Authentication complete",
        "<p>Thank you. You may now close this window and return to your Matrix client.</p>"
        + "<script>if (window.onAuthDone) window.onAuthDone(); else if (window.opener && window.opener.postMessage) window.opener.postMessage(\"authDone\", \"*\");</script>");

    /// <summary>Several providers are configured and the client named none: one link each.</summary>
    public static string PickProvider(string serverName, IEnumerable<(string Name, string Url)> providers) => Page("Sign in",
        $"<p>Choose how to sign in to <b>{Html(serverName)}</b>:</p><ul>"
        + string.Concat(providers.Select(p => $"<li><a href=\"{Html(p.Url)}\">Continue with {Html(p.Name)}</a></li>")) + "</ul>");

    /// <summary>A sign-in that could not finish, and why; the client is not told anything.</summary>
    public static string Failed(string why) => Page("Sign-in failed",
        $"<p role=\"alert\">{Html(why)}</p><p>Return to your Matrix client to try again.</p>");

    public static string WrongUser(string provedUserId) => Page("Wrong account",
        $"<p>Single sign-on identified you as <b>{Html(provedUserId)}</b>, who is not the user making the request. Nothing was authorised.</p>");

    private static string HostOf(string url) => Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.Authority : url;
}
