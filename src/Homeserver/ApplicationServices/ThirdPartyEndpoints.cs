using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// Spec: third-party networks (<c>/thirdparty/*</c>): answered by the application services that declare the protocol
/// in their registration, through their <c>/_matrix/app/v1/thirdparty/*</c> endpoints.
/// </summary>
public sealed class ThirdPartyEndpoints(Authenticator authenticator, AppServiceRegistry registry, ThirdPartyLookups lookups) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "thirdparty/protocols", ProtocolsAsync);
        app.MapV3("GET", "thirdparty/protocol/{protocol}", ProtocolAsync);
        app.MapV3("GET", "thirdparty/location/{protocol}", context => LookupAsync(context, "location", "alias"));
        app.MapV3("GET", "thirdparty/user/{protocol}", context => LookupAsync(context, "user", "userid"));
        app.MapV3("GET", "thirdparty/location", context => ReverseLookupAsync(context, "location", "alias"));
        app.MapV3("GET", "thirdparty/user", context => ReverseLookupAsync(context, "user", "userid"));
    }

    private async Task ProtocolsAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        var protocols = new JsonObject();
        foreach (var (protocol, metadata) in await lookups.ProtocolsAsync(null, context.RequestAborted))
            protocols[protocol] = metadata;
        await context.WriteJsonAsync(protocols);
    }

    private async Task ProtocolAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        var protocol = context.Route("protocol");
        await context.WriteJsonAsync((await lookups.ProtocolsAsync(protocol, context.RequestAborted)).GetValueOrDefault(protocol)
            ?? throw MatrixException.NotFound("No application service provides that protocol."));
    }

    /// <summary>
    /// Locations or users of one protocol matching the query's fields, from every service providing it; the fields are
    /// the query string without the requester's access token.
    /// </summary>
    private async Task LookupAsync(HttpContext context, string kind, string idField)
    {
        await authenticator.AuthenticateAsync(context);
        var protocol = context.Route("protocol");
        var services = lookups.ServicesFor(protocol).ToList();
        if (services.Count == 0)
            throw MatrixException.NotFound("No application service provides that protocol.");
        var fields = QueryString.Create(context.Request.Query.Where(p => p.Key != "access_token"));
        await context.WriteJsonAsync(await lookups.LookupAsync(services, $"{kind}/{Uri.EscapeDataString(protocol)}{fields}", idField, context.RequestAborted));
    }

    /// <summary>The third-party locations of a room alias, or the third-party users of a Matrix user, from every service.</summary>
    private async Task ReverseLookupAsync(HttpContext context, string kind, string parameter)
    {
        await authenticator.AuthenticateAsync(context);
        var value = context.Query(parameter);
        if (value.Length == 0)
            throw MatrixException.MissingParam(parameter);
        await context.WriteJsonAsync(await lookups.LookupAsync(registry.All.Where(s => s.Url is not null && s.Protocols.Count > 0),
            $"{kind}?{parameter}={Uri.EscapeDataString(value)}", parameter, context.RequestAborted));
    }
}
