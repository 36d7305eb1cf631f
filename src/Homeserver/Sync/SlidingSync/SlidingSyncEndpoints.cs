using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>
/// MSC4186 simplified sliding sync, <c>POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync</c>: what
/// Element X (matrix-rust-sdk) and matrix-js-sdk's <c>SlidingSync</c> use instead of <c>/sync</c>.
/// </summary>
public sealed class SlidingSyncEndpoints(Authenticator authenticator, JsonBody json, SlidingSyncService slidingSync, Presence.PresenceService presence)
    : IEndpoints
{
    public const string UnstableFeature = "org.matrix.simplified_msc3575";

    public void Map(IEndpointRouteBuilder app) =>
        app.MapMethods($"{Routes.ClientPrefix}/unstable/{UnstableFeature}/sync", ["POST"], SyncAsync);

    private async Task SyncAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var request = SlidingSyncRequest.Parse(context, await json.ReadObjectAsync(context));
        // As /sync: polling marks the user online (or idle when asked), and "offline" means "do not mark me online".
        var setPresence = request.SetPresence ?? "online";
        if (setPresence != "offline")
            await presence.SetAsync(requester.UserId.Value, setPresence, null, keepStatusMsg: true, context.RequestAborted);
        await context.WriteJsonAsync(await slidingSync.SyncAsync(requester, request, context.RequestAborted));
    }
}
