using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>A signed-in browser: who, and when they proved it.</summary>
public sealed record BrowserUser(string UserId, long AuthTime);

/// <summary>
/// Who is signed in to the server's OAuth pages in this browser: a random cookie (HttpOnly, SameSite=Lax, Secure on an
/// https server) naming a stored session. Any way of proving who someone is (the password form, an upstream provider)
/// ends in <see cref="SignInAsync"/>.
/// </summary>
public sealed class OAuthBrowserSessions(Database db, OAuthBrowserSessionStore store, UserStore users, HomeserverConfig config, TimeProvider clock)
{
    private const string CookieName = "hs_oauth_session";

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Signs the browser in as <paramref name="userId"/> (already authenticated by the caller).</summary>
    public async Task SignInAsync(HttpContext context, string userId)
    {
        var token = Secrets.NewToken("");
        var now = Now;
        var expires = now + config.Oauth.BrowserSessionLifetimeMs;
        await db.WriteAsync(s => store.InsertAsync(s, Secrets.Hash(token), userId, now, expires), context.RequestAborted);
        context.Response.Cookies.Append(CookieName, token, Cookie(config, TimeSpan.FromMilliseconds(config.Oauth.BrowserSessionLifetimeMs)));
        context.Items[typeof(BrowserUser)] = new BrowserUser(userId, now);
    }

    /// <summary>The signed-in user, or null (no cookie, an ended or expired session, a deactivated account).</summary>
    public async Task<BrowserUser?> CurrentAsync(HttpContext context)
    {
        if (context.Items.TryGetValue(typeof(BrowserUser), out var known))
            return (BrowserUser?)known;
        if (context.Request.Cookies[CookieName] is not { Length: > 0 } token)
            return null;
        var (session, user) = await db.ReadAsync(async s =>
        {
            var session = await store.GetAsync(s, Secrets.Hash(token));
            return (session, session is null ? null : await users.GetAsync(s, session.UserId));
        }, context.RequestAborted);
        return session is null || session.ExpiresTs <= Now || user is null || user.Deactivated != 0 || user.Locked != 0
            ? null
            : new BrowserUser(session.UserId, session.AuthTime);
    }

    /// <summary>For a page: the signed-in user, or null once the browser has been sent to sign in and come back here.</summary>
    public async Task<BrowserUser?> CurrentOrSignInAsync(HttpContext context)
    {
        var user = await CurrentAsync(context);
        if (user is null)
            HtmlPages.Redirect(context, OAuthPaths.LoginUrl(OAuthPaths.Here(context)));
        return user;
    }

    /// <summary>For a form's post: the signed-in user; a session that ended meanwhile is refused.</summary>
    public async Task<BrowserUser> RequireAsync(HttpContext context) =>
        await CurrentAsync(context) ?? throw new OAuthException(401, "login_required", "You are not signed in any more.");

    public async Task SignOutAsync(HttpContext context)
    {
        if (context.Request.Cookies[CookieName] is { Length: > 0 } token)
            await db.WriteAsync(s => store.DeleteAsync(s, Secrets.Hash(token)), context.RequestAborted);
        context.Response.Cookies.Delete(CookieName, Cookie(config, null));
        context.Items[typeof(BrowserUser)] = null;
    }

    /// <summary>The cookies of the OAuth pages: scoped to them, out of scripts' reach.</summary>
    public static CookieOptions Cookie(HomeserverConfig config, TimeSpan? maxAge, SameSiteMode sameSite = SameSiteMode.Lax) => new()
    {
        HttpOnly = true,
        SameSite = sameSite,
        Secure = config.EffectivePublicBaseurl.StartsWith("https:", StringComparison.Ordinal),
        Path = OAuthRoutes.Prefix + "/",
        MaxAge = maxAge,
    };
}
