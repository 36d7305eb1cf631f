using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>Spec (server-server): <c>version</c>, and the <c>query/profile</c> and <c>query/directory</c> queries.</summary>
public sealed class FederationQueryEndpoints(
    FederationRequestAuth auth, ProfileStore profiles, RoomStore rooms, Database db, ApplicationServices.AppServiceQueries appServices,
    HomeserverConfig config) : IEndpoints
{
    public const string FederationPrefix = "/_matrix/federation";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet($"{FederationPrefix}/v1/version", VersionAsync);
        app.MapGet($"{FederationPrefix}/v1/query/profile", ProfileAsync);
        app.MapGet($"{FederationPrefix}/v1/query/directory", DirectoryAsync);
    }

    private Task VersionAsync(HttpContext context) => config.Federation.Enabled
        ? context.WriteJsonAsync(new JsonObject
        {
            ["server"] = new JsonObject
            {
                ["name"] = "Matrix.Homeserver",
                ["version"] = typeof(FederationQueryEndpoints).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
            },
        })
        : throw MatrixException.Unrecognized();

    private async Task ProfileAsync(HttpContext context)
    {
        await auth.AuthenticateAsync(context);
        var userIdText = context.Query("user_id");
        if (!UserId.TryParse(userIdText, out var userId))
            throw MatrixException.InvalidParam("user_id is not a valid user ID.");
        if (userId.Server.Value != config.ServerName)
            throw MatrixException.InvalidParam("The user is not on this server.");
        var field = context.Query("field");
        if (field.Length > 0 && field is not ("displayname" or "avatar_url"))
            throw MatrixException.InvalidParam("field must be displayname or avatar_url.");
        var stored = (await db.ReadAsync(s => profiles.GetAllAsync(s, userId.Value), context.RequestAborted)).ToList();
        var exists = await db.ReadAsync(s => s.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users WHERE user_id = @id", new { id = userId.Value }), context.RequestAborted);
        if (exists == 0)
            throw MatrixException.NotFound("Profile was not found.");
        var response = new JsonObject();
        foreach (var entry in stored.Where(f => f.Field is "displayname" or "avatar_url" && (field.Length == 0 || f.Field == field)))
            response[entry.Field] = JsonNode.Parse(entry.ValueJson);
        await context.WriteJsonAsync(response);
    }

    private async Task DirectoryAsync(HttpContext context)
    {
        await auth.AuthenticateAsync(context);
        var alias = context.Query("room_alias");
        if (!RoomDirectory.RoomAlias.IsValid(alias))
            throw MatrixException.InvalidParam("room_alias is not a valid alias.");
        var roomId = await db.ReadAsync(s => rooms.ResolveAliasAsync(s, alias), context.RequestAborted)
            ?? await appServices.AskForAliasAsync(alias, context.RequestAborted)
            ?? throw MatrixException.NotFound("Room alias not found.");
        await context.WriteJsonAsync(new JsonObject { ["room_id"] = roomId, ["servers"] = new JsonArray(config.ServerName) });
    }
}

/// <summary>Spec (server-server): <c>publicRooms</c> GET and POST, this server's room directory for other servers.</summary>
public sealed class FederationPublicRoomEndpoints(FederationRequestAuth auth, RoomDirectory.PublicRoomList publicRooms) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet($"{FederationQueryEndpoints.FederationPrefix}/v1/publicRooms", ListAsync);
        app.MapPost($"{FederationQueryEndpoints.FederationPrefix}/v1/publicRooms", ListAsync);
    }

    private async Task ListAsync(HttpContext context)
    {
        var (_, body) = await auth.AuthenticateAsync(context);
        if (body is JsonObject withFilter && withFilter["filter"] is { } and not JsonObject)
            throw MatrixException.BadJson("filter must be an object.");
        var query = body is JsonObject request
            ? new RoomDirectory.PublicRoomQuery(request["limit"].TryGetInteger(out var limit) ? (int)limit : null, request["since"]?.AsString(),
                (request["filter"] as JsonObject)?["generic_search_term"]?.AsString())
            : RoomDirectory.PublicRoomQuery.FromQuery(context);
        await context.WriteJsonAsync(await publicRooms.ListAsync(query, context.RequestAborted));
    }
}
