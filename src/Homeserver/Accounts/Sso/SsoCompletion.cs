using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// The end of a single sign-on, whichever provider vouched: the client gets a login token (through a page the user
/// confirms), the user-interactive auth session its <c>m.login.sso</c> stage, or the browser is signed in to the OAuth
/// pages and sent back to the one it came from.
/// </summary>
public sealed class SsoCompletion(
    UserInteractiveAuth uia, OAuth.OAuthBrowserSessions oauthBrowser, TokenStore tokens, Database db, HomeserverConfig config, TimeProvider clock)
{
    public async Task FinishAsync(HttpContext context, SsoTarget target, string userId)
    {
        var ct = context.RequestAborted;
        if (target.UiaSession is { } session)
        {
            if (!await uia.CompleteSsoStageAsync(session, userId, ct))
                throw new MatrixException(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session.");
            var live = await uia.LiveSessionAsync(session, ct);
            await HtmlResponse.WriteAsync(context, live?.UserId == userId ? SsoPages.StageCompleted() : SsoPages.WrongUser(userId), inlineScript: true);
            return;
        }
        if (target.ReturnTo is { } returnTo)
        {
            await oauthBrowser.SignInAsync(context, userId);
            OAuth.HtmlPages.Redirect(context, returnTo);
            return;
        }
        var redirectUrl = target.ClientRedirectUrl ?? throw new InvalidOperationException("a sign-in with nowhere to go");
        var loginToken = Secrets.NewToken("mal_");
        var expires = clock.GetUtcNow().ToUnixTimeMilliseconds() + config.Auth.LoginTokenLifetimeMs;
        await db.WriteAsync(s => tokens.InsertLoginTokenAsync(s, Secrets.Hash(loginToken), userId, expires), ct);
        await HtmlResponse.WriteAsync(context, SsoPages.ContinueToClient(config.ServerName, userId, WithQueryParameter(redirectUrl, "loginToken", loginToken)));
    }

    private static string WithQueryParameter(string url, string name, string value)
    {
        var hash = url.IndexOf('#');
        var (head, fragment) = hash < 0 ? (url, "") : (url[..hash], url[hash..]);
        return $"{head}{(head.Contains('?') ? "&" : "?")}{name}={Uri.EscapeDataString(value)}{fragment}";
    }
}
