using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Spec (server-server): third-party invites: <c>/3pid/onbind</c>, called by an identity server when a 3PID with pending
/// invites is bound to a user of this server, and <c>exchange_third_party_invite</c>, called by the invitee's server
/// when the room is this server's to build the invite in.
/// </summary>
public sealed class ThirdPartyInviteEndpoints(FederationRequestAuth auth, ThirdPartyInvites invites, JsonBody json) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        // PUT is the spec's method; identity servers (Sydent) send POST, which Synapse serves.
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v1/3pid/onbind", OnBindAsync);
        app.MapPost($"{FederationQueryEndpoints.FederationPrefix}/v1/3pid/onbind", OnBindAsync);
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v1/exchange_third_party_invite/{{roomId}}", ExchangeAsync);
    }

    /// <summary>Unauthenticated, as the spec has it: what it carries counts only when signed by a key of the room's invite.</summary>
    private async Task OnBindAsync(HttpContext context)
    {
        var body = await json.ReadObjectAsync(context);
        await invites.OnBindAsync((JsonObject)JsonNode.Parse(body.GetRawText())!, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task ExchangeAsync(HttpContext context)
    {
        var (origin, body) = await auth.AuthenticateAsync(context);
        var roomId = context.Route("roomId");
        if (body is not JsonObject skeleton || skeleton["state_key"].AsString() is not { } invitee
            || skeleton["sender"].AsString() is not { } sender
            || (skeleton["content"] as JsonObject)?["third_party_invite"] is not JsonObject { } thirdParty
            || thirdParty["signed"] is not JsonObject signed)
            throw MatrixException.BadJson("Expected an m.room.member invite with state_key, sender and content.third_party_invite.signed.");
        if (EventSigning.ServerOf(invitee) != origin)
            throw MatrixException.Forbidden("A server may only exchange invites for its own users.");
        await invites.ExchangeAsync(roomId, sender, invitee, signed, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }
}
