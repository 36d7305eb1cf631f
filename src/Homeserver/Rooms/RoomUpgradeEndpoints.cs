using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Rooms;

/// <summary>Spec: Room upgrades, <c>POST /rooms/{roomId}/upgrade</c>.</summary>
public sealed class RoomUpgradeEndpoints(Authenticator authenticator, JsonBody json, RoomUpgrades upgrades) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app) => app.MapV3("POST", "rooms/{roomId}/upgrade", UpgradeAsync);

    private async Task UpgradeAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var body = await json.ReadObjectAsync(context);
        var versionId = body.OptionalString("new_version") ?? throw MatrixException.MissingParam("new_version");
        var version = RoomVersions.Find(versionId)
            ?? throw new MatrixException(400, "M_UNSUPPORTED_ROOM_VERSION", $"Room version '{versionId}' is not supported.");
        var creators = body.TryGetProperty("additional_creators", out _) ? body.RequiredStringArray("additional_creators") : [];
        if (creators.Any(c => !UserId.TryParse(c, out _)))
            throw MatrixException.InvalidParam("additional_creators must be user IDs.");
        var replacement = await upgrades.UpgradeAsync(requester.UserId.Value, roomId, version, creators.Distinct().ToList(), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["replacement_room"] = replacement });
    }
}
