using System.Collections.Frozen;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Spec (Guest Access, client behaviour): the one list of client endpoints a guest account may call, checked when a
/// guest's token is authenticated; anything else answers 403 <c>M_GUEST_ACCESS_FORBIDDEN</c>. The list is the spec's
/// plus what Synapse also lets guests do (its <c>allow_guest=True</c> servlets): room directory and summaries,
/// relations, joined rooms, capabilities, the other key endpoints, third-party lookups, TURN credentials, and reading
/// profiles (which Synapse serves without authentication).
/// </summary>
public static class GuestAccess
{
    /// <summary>Method and route template after the version segment (<c>v1</c>, <c>v3</c>, <c>r0</c>).</summary>
    public static readonly FrozenSet<string> AllowedRoutes = new[]
    {
        // Retrieving events and media.
        "GET sync",
        "GET events",
        "GET rooms/{roomId}/state",
        "GET rooms/{roomId}/state/{eventType}",
        "GET rooms/{roomId}/state/{eventType}/{*stateKey}",
        "GET rooms/{roomId}/context/{eventId}",
        "GET rooms/{roomId}/event/{eventId}",
        "GET rooms/{roomId}/messages",
        "GET rooms/{roomId}/members",
        "GET rooms/{roomId}/initialSync",
        "GET media/download/{serverName}/{mediaId}",
        "GET media/download/{serverName}/{mediaId}/{fileName}",
        "GET media/thumbnail/{serverName}/{mediaId}",
        // Sending events (joins are further limited to rooms whose m.room.guest_access is can_join).
        "POST rooms/{roomId}/join",
        "POST join/{roomIdOrAlias}",
        "POST rooms/{roomId}/leave",
        "PUT rooms/{roomId}/send/{eventType}/{txnId}",
        "POST rooms/{roomId}/send/{eventType}",
        "PUT rooms/{roomId}/state/{eventType}",
        "PUT rooms/{roomId}/state/{eventType}/{*stateKey}",
        "PUT sendToDevice/{eventType}/{txnId}",
        // Account maintenance (the profile's display name only: see Allows).
        "GET devices",
        "GET devices/{deviceId}",
        "PUT devices/{deviceId}",
        "GET account/whoami",
        "GET profile/{userId}",
        "GET profile/{userId}/{keyName}",
        // End-to-end encryption.
        "POST keys/upload",
        "POST keys/query",
        "POST keys/claim",
        "GET keys/changes",
        "POST keys/signatures/upload",
        // Also allowed by Synapse.
        "GET joined_rooms",
        "GET publicRooms",
        "POST publicRooms",
        "GET rooms/{roomId}/hierarchy",
        "GET room_summary/{roomIdOrAlias}",
        "GET rooms/{roomId}/relations/{eventId}",
        "GET rooms/{roomId}/relations/{eventId}/{relType}",
        "GET rooms/{roomId}/relations/{eventId}/{relType}/{eventType}",
        "GET capabilities",
        "GET thirdparty/protocols",
        "GET thirdparty/protocol/{protocol}",
        "GET thirdparty/user",
        "GET thirdparty/user/{protocol}",
        "GET thirdparty/location",
        "GET thirdparty/location/{protocol}",
        "GET voip/turnServer",
    }.ToFrozenSet(StringComparer.Ordinal);

    private const string ProfileField = "profile/{userId}/{keyName}";

    public static MatrixException Forbidden(string message = "Guest access is not allowed for this endpoint.") =>
        new(403, "M_GUEST_ACCESS_FORBIDDEN", message);

    /// <summary>Whether a guest may call the endpoint this request was routed to.</summary>
    public static bool Allows(HttpContext context)
    {
        if (RouteOf(context) is not { } route)
            return false;
        var method = context.Request.Method;
        if (route == ProfileField && method is "PUT" or "DELETE")
            return context.Request.RouteValues["keyName"] as string == "displayname";
        return AllowedRoutes.Contains($"{method} {route}");
    }

    /// <summary>The route template after <c>/_matrix/client/{version}/</c>, or null for other endpoints.</summary>
    private static string? RouteOf(HttpContext context)
    {
        if (context.GetEndpoint() is not RouteEndpoint { RoutePattern.RawText: { } pattern }
            || !pattern.StartsWith(Routes.ClientPrefix + "/", StringComparison.Ordinal))
            return null;
        var afterPrefix = pattern[(Routes.ClientPrefix.Length + 1)..];
        var slash = afterPrefix.IndexOf('/');
        return slash < 0 ? null : afterPrefix[(slash + 1)..];
    }
}
