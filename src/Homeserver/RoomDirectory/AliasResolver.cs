using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>
/// Resolves room aliases: local ones from the database (or from the application service whose namespace holds an
/// unknown one), others through <c>query/directory</c> on the alias's server.
/// </summary>
public sealed class AliasResolver(Database db, RoomStore rooms, FederationClient federation, ApplicationServices.AppServiceQueries appServices,
    HomeserverConfig config)
{
    /// <summary>A room ID as it is (no servers known), or an alias resolved; 400 when it is neither.</summary>
    public async Task<(string RoomId, IReadOnlyList<string> Servers)> ResolveIdOrAliasAsync(string idOrAlias, CancellationToken ct)
    {
        if (idOrAlias.StartsWith('#'))
            return RoomAlias.IsValid(idOrAlias) ? await ResolveAsync(idOrAlias, ct) : throw MatrixException.InvalidParam("Invalid room alias.");
        return RoomId.TryParse(idOrAlias, out _) ? (idOrAlias, []) : throw MatrixException.InvalidParam("Invalid room ID or alias.");
    }

    /// <summary>The room and the servers that can help join it; 404 M_NOT_FOUND when the alias does not exist.</summary>
    public async Task<(string RoomId, IReadOnlyList<string> Servers)> ResolveAsync(string alias, CancellationToken ct)
    {
        if (RoomAlias.ServerOf(alias) == config.ServerName)
        {
            var roomId = await db.ReadAsync(s => rooms.ResolveAliasAsync(s, alias), ct) ?? await appServices.AskForAliasAsync(alias, ct)
                ?? throw MatrixException.NotFound("Room alias not found.");
            return (roomId, [config.ServerName]);
        }
        if (!config.Federation.Enabled)
            throw MatrixException.NotFound("Room alias not found.");
        try
        {
            var answer = await federation.SendAsync(HttpMethod.Get, RoomAlias.ServerOf(alias),
                $"/_matrix/federation/v1/query/directory?room_alias={Uri.EscapeDataString(alias)}", null, ct) as JsonObject;
            if (answer?["room_id"] is not JsonValue value || !value.TryGetValue<string>(out var roomId) || !RoomId.TryParse(roomId, out _))
                throw new MatrixException(502, "M_UNKNOWN", "The alias's server gave an invalid answer.");
            var servers = (answer["servers"] as JsonArray ?? []).Select(s => s is JsonValue v && v.TryGetValue<string>(out var name)
                && ServerName.TryParse(name, out _) ? name : null).OfType<string>().ToList();
            return (roomId, servers);
        }
        catch (FederationException e) when (e.Status == 404)
        {
            throw MatrixException.NotFound("Room alias not found.");
        }
        catch (FederationException e)
        {
            throw new MatrixException(502, "M_UNKNOWN", $"Could not resolve the alias: {e.Message}");
        }
    }
}
