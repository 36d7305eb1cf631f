using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// Spec: third-party networks (<c>/thirdparty/*</c>): answered by the application services that declare the protocol
/// in their registration, through their <c>/_matrix/app/v1/thirdparty/*</c> endpoints.
/// </summary>
public sealed class ThirdPartyEndpoints(Authenticator authenticator, AppServiceRegistry registry, AppServiceClient client) : IEndpoints
{
    private const string AppPrefix = "/_matrix/app/v1/thirdparty";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "thirdparty/protocols", ProtocolsAsync);
        app.MapV3("GET", "thirdparty/protocol/{protocol}", ProtocolAsync);
        app.MapV3("GET", "thirdparty/location/{protocol}", context => LookupAsync(context, "location"));
        app.MapV3("GET", "thirdparty/user/{protocol}", context => LookupAsync(context, "user"));
        app.MapV3("GET", "thirdparty/location", context => ReverseLookupAsync(context, "location", "alias"));
        app.MapV3("GET", "thirdparty/user", context => ReverseLookupAsync(context, "user", "userid"));
    }

    private IEnumerable<AppServiceRegistration> ServicesFor(string protocol) => registry.All.Where(s => s.Url is not null && s.Protocols.Contains(protocol));

    private async Task<JsonObject?> ProtocolMetadataAsync(string protocol, CancellationToken ct)
    {
        foreach (var service in ServicesFor(protocol))
            if (await client.SendAsync(service, HttpMethod.Get, $"{AppPrefix}/protocol/{Uri.EscapeDataString(protocol)}", null, ct) is { Ok: true, Body: JsonObject metadata })
                return metadata;
        return null;
    }

    private async Task ProtocolsAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        var protocols = new JsonObject();
        foreach (var protocol in registry.All.SelectMany(s => s.Protocols).Distinct())
            if (await ProtocolMetadataAsync(protocol, context.RequestAborted) is { } metadata)
                protocols[protocol] = metadata;
        await context.WriteJsonAsync(protocols);
    }

    private async Task ProtocolAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(await ProtocolMetadataAsync(context.Route("protocol"), context.RequestAborted)
            ?? throw MatrixException.NotFound("No application service provides that protocol."));
    }

    /// <summary>Locations or users of one protocol matching the query's fields, from every service providing it.</summary>
    private async Task LookupAsync(HttpContext context, string kind)
    {
        await authenticator.AuthenticateAsync(context);
        var protocol = context.Route("protocol");
        var services = ServicesFor(protocol).ToList();
        if (services.Count == 0)
            throw MatrixException.NotFound("No application service provides that protocol.");
        await context.WriteJsonAsync(await CollectAsync(services, $"{AppPrefix}/{kind}/{Uri.EscapeDataString(protocol)}{context.Request.QueryString}",
            context.RequestAborted));
    }

    /// <summary>The third-party locations of a room alias, or the third-party users of a Matrix user, from every service.</summary>
    private async Task ReverseLookupAsync(HttpContext context, string kind, string parameter)
    {
        await authenticator.AuthenticateAsync(context);
        var value = context.Query(parameter);
        if (value.Length == 0)
            throw MatrixException.MissingParam(parameter);
        await context.WriteJsonAsync(await CollectAsync(registry.All.Where(s => s.Url is not null && s.Protocols.Count > 0).ToList(),
            $"{AppPrefix}/{kind}?{parameter}={Uri.EscapeDataString(value)}", context.RequestAborted));
    }

    private async Task<JsonArray> CollectAsync(List<AppServiceRegistration> services, string pathAndQuery, CancellationToken ct)
    {
        var results = new JsonArray();
        foreach (var service in services)
            if (await client.SendAsync(service, HttpMethod.Get, pathAndQuery, null, ct) is { Ok: true, Body: JsonArray found })
                foreach (var item in found.OfType<JsonObject>())
                    results.Add(item.DeepClone());
        return results;
    }
}
