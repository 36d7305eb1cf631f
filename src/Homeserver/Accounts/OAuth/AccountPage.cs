using System.Text.Json;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Storage;
using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Spec: "Account management" (<c>account_management_uri</c>): the signed-in user's profile, sessions (one viewed, one
/// signed out), deactivation and the approval of a cross-signing reset, each reached by its <c>action</c>. Every
/// change is a form with a CSRF token.
/// </summary>
public sealed class AccountPage(Database db, DeviceStore devices, ProfileService profiles, AccountService accounts, AccountDeactivation deactivation,
    OAuthBrowserSessions browser, OAuthBrowserSessionStore browserSessions, CrossSigningResets resets, Csrf csrf,
    Config.HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPage("GET", OAuthPaths.Account, ShowAsync);
        app.MapPage("POST", OAuthPaths.Account, ChangeAsync);
    }

    private async Task ShowAsync(HttpContext context)
    {
        if (await browser.CurrentOrSignInAsync(context) is not { } user)
            return;
        var query = OAuthRoutes.QueryParameters(context);
        var deviceId = query.Optional("device_id");
        var token = csrf.Token(context);
        var ct = context.RequestAborted;
        var html = query.Optional("action") switch
        {
            "org.matrix.devices_list" or "org.matrix.sessions_list" => SessionList(await ListDevicesAsync(user.UserId, ct), token),
            "org.matrix.device_view" or "org.matrix.session_view" => SessionView(await DeviceAsync(user.UserId, deviceId, ct), token),
            "org.matrix.device_delete" or "org.matrix.session_end" => Page("Sign out a session",
                $"<p>Sign out the session {Html(DeviceName(await DeviceAsync(user.UserId, deviceId, ct)))}? Its client will need to sign in again.</p>"
                + Form(OAuthPaths.Account, token, Hidden("device_id", deviceId!), ("do", "end_session", "Sign out"))),
            "org.matrix.account_deactivate" => Page("Deactivate your account",
                $"<p>Deactivating {Html(user.UserId)} signs out every session and cannot be undone.</p>"
                + Form(OAuthPaths.Account, token, "<label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I want to deactivate my account</label>",
                    ("do", "deactivate", "Deactivate account"))),
            CrossSigningResets.Action => Page("Reset your cross-signing identity",
                "<p>Allow your client to replace your cross-signing keys. Your other sessions and contacts will need to verify you again. "
                + $"The permission lasts {config.Oauth.CrossSigningResetLifetimeMs / 60000} minutes.</p>"
                + Form(OAuthPaths.Account, token, "", ("do", "reset_cross_signing", "Allow the reset"))),
            _ => await ProfileAsync(user.UserId, token, ct),
        };
        await WriteAsync(context, html);
    }

    private async Task ChangeAsync(HttpContext context)
    {
        var form = await Csrf.ReadFormAsync(context);
        var user = await browser.RequireAsync(context);
        var ct = context.RequestAborted;
        switch (form.Optional("do"))
        {
            case "set_displayname":
                UserId.TryParse(user.UserId, out var userId);
                await profiles.SetFieldAsync(new Requester(userId, "", IsAdmin: false, TokenHash: ""), userId, "displayname",
                    JsonSerializer.SerializeToElement(form.Optional("displayname") ?? ""), ct);
                HtmlPages.Redirect(context, OAuthPaths.Account);
                return;
            case "end_session":
                var device = await DeviceAsync(user.UserId, form.Optional("device_id"), ct);
                await accounts.DeleteDevicesAsync(user.UserId, [device.DeviceId], alsoInTransaction: null, ct);
                HtmlPages.Redirect(context, $"{OAuthPaths.Account}?action=org.matrix.sessions_list");
                return;
            case "deactivate" when form.Optional("confirm") == "yes":
                await deactivation.DeactivateAsync(user.UserId, erase: false, idServer: null, s => browserSessions.DeleteForUserAsync(s, user.UserId), ct);
                await browser.SignOutAsync(context);
                await WriteAsync(context, Page("Account deactivated", $"<p>{Html(user.UserId)} has been deactivated.</p>"));
                return;
            case "reset_cross_signing":
                await resets.ApproveAsync(user.UserId, ct);
                await WriteAsync(context, Page("Reset allowed",
                    "<p>Return to your client to finish resetting your cross-signing identity.</p>"));
                return;
            default:
                throw OAuthException.InvalidRequest("Unknown or unconfirmed action.");
        }
    }

    private Task<IEnumerable<DeviceRow>> ListDevicesAsync(string userId, CancellationToken ct) => db.ReadAsync(s => devices.ListAsync(s, userId), ct);

    private async Task<DeviceRow> DeviceAsync(string userId, string? deviceId, CancellationToken ct) =>
        (deviceId is null ? null : await db.ReadAsync(s => devices.GetAsync(s, userId, deviceId), ct))
        ?? throw new OAuthException(404, "not_found", "You have no session with this device ID.");

    private async Task<string> ProfileAsync(string userId, string token, CancellationToken ct)
    {
        UserId.TryParse(userId, out var id);
        var displayName = (await profiles.GetProfileAsync(id, ct)).FirstOrDefault(f => f.Field == "displayname")?.ValueJson is { } json
            ? JsonSerializer.Deserialize<string>(json) ?? "" : "";
        return Page("Your account",
            $"<p>Signed in as <b>{Html(userId)}</b>.</p>"
            + Form(OAuthPaths.Account, token,
                Field("displayname", "Display name", "text", "nickname", displayName),
                ("do", "set_displayname", "Save"))
            + $"<ul><li><a href=\"{OAuthPaths.Account}?action=org.matrix.sessions_list\">Sessions</a></li>"
            + $"<li><a href=\"{OAuthPaths.Account}?action={CrossSigningResets.Action}\">Reset cross-signing</a></li>"
            + $"<li><a href=\"{OAuthPaths.Account}?action=org.matrix.account_deactivate\">Deactivate account</a></li></ul>"
            + Form(OAuthPaths.Logout, token, Hidden("return_to", OAuthPaths.Account), ("sign_out", "1", "Sign out of this browser")));
    }

    private static string SessionList(IEnumerable<DeviceRow> sessions, string token) => Page("Your sessions",
        "<ul>" + string.Concat(sessions.Select(d =>
            $"<li><a href=\"{OAuthPaths.Account}?action=org.matrix.session_view&amp;device_id={Uri.EscapeDataString(d.DeviceId)}\">{Html(DeviceName(d))}</a>"
            + Form(OAuthPaths.Account, token, Hidden("device_id", d.DeviceId), ("do", "end_session", $"Sign out {DeviceName(d)}")) + "</li>"))
        + $"</ul><p><a href=\"{OAuthPaths.Account}\">Back to your account</a></p>");

    private static string SessionView(DeviceRow device, string token) => Page(DeviceName(device),
        $"<dl><dt>Device ID</dt><dd>{Html(device.DeviceId)}</dd>"
        + $"<dt>Last seen</dt><dd>{(device.LastSeenTs is { } ts ? Html(DateTimeOffset.FromUnixTimeMilliseconds(ts).ToString("u")) : "never")}"
        + $"{(device.LastSeenIp is { } ip ? " from " + Html(ip) : "")}</dd></dl>"
        + Form(OAuthPaths.Account, token, Hidden("device_id", device.DeviceId), ("do", "end_session", "Sign out this session")));

    private static string DeviceName(DeviceRow device) => device.DisplayName is { Length: > 0 } name ? $"{name} ({device.DeviceId})" : device.DeviceId;
}
