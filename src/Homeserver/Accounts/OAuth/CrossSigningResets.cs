using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Replacing cross-signing keys approved in the browser (the account page's <c>org.matrix.cross_signing_reset</c>, as
/// MAS does): for a few minutes the keys can be replaced without user-interactive auth. Without an approval, the UIA
/// answer also offers the spec's <c>m.oauth</c> stage (and Synapse's unstable name for it), pointing at that page.
/// </summary>
public sealed class CrossSigningResets(Database db, OAuthSessionStore store, UserInteractiveAuth uia, OAuthPaths paths, HomeserverConfig config,
    TimeProvider clock)
{
    public const string Action = "org.matrix.cross_signing_reset";
    private const string OAuthStage = "m.oauth";

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    public Task ApproveAsync(string userId, CancellationToken ct) =>
        db.WriteAsync(s => store.ApproveCrossSigningResetAsync(s, userId, Now + config.Oauth.CrossSigningResetLifetimeMs), ct);

    /// <summary>The UIA session authorising the replacement, or null when the browser approved it.</summary>
    public async Task<UiaResult?> AuthoriseAsync(HttpContext context, JsonElement body, Requester requester)
    {
        if (config.Oauth.Enabled && await db.ReadAsync(s => store.CrossSigningResetApprovedUntilAsync(s, requester.UserId.Value), context.RequestAborted) > Now)
            return null;
        try
        {
            return await uia.ReauthenticateAsync(context, body, requester);
        }
        catch (UiaRequiredException e) when (config.Oauth.Enabled)
        {
            var answer = e.ToJson();
            var url = new JsonObject { ["url"] = paths.Absolute($"{OAuthPaths.Account}?action={Action}") };
            foreach (var stage in new[] { OAuthStage, Action })
            {
                answer["flows"]!.AsArray().Add(new JsonObject { ["stages"] = new JsonArray(stage) });
                answer["params"]![stage] = url.DeepClone();
            }
            throw new UiaRequiredException(answer, (string?)answer["errcode"], (string?)answer["error"]);
        }
    }
}
