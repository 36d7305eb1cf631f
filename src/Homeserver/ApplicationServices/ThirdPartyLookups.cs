using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// Third-party networks as the application services providing them describe them: protocol metadata (each service's
/// answer kept for an hour, as Synapse keeps it), and users and locations looked up through every provider.
/// </summary>
public sealed class ThirdPartyLookups(AppServiceRegistry registry, AppServiceClient client, TimeProvider clock)
{
    private const string AppPrefix = "/_matrix/app/v1/thirdparty";
    private static readonly TimeSpan MetadataLifetime = TimeSpan.FromHours(1);
    private readonly ConcurrentDictionary<(string ServiceId, string Protocol), (JsonObject Metadata, DateTimeOffset Expires)> _metadata = new();

    public IEnumerable<AppServiceRegistration> ServicesFor(string protocol) =>
        registry.All.Where(s => s.Url is not null && s.Protocols.Contains(protocol));

    /// <summary>
    /// The metadata of each protocol (or only of <paramref name="only"/>) that some provider answered validly: the
    /// first provider's fields with the <c>instances</c> of all providers, as Synapse merges them.
    /// </summary>
    public async Task<Dictionary<string, JsonObject>> ProtocolsAsync(string? only, CancellationToken ct)
    {
        var asked = registry.All.Where(s => s.Url is not null)
            .SelectMany(s => s.Protocols.Where(p => only is null || p == only).Select(p => (Protocol: p, Answer: MetadataAsync(s, p, ct))))
            .ToList();
        await Task.WhenAll(asked.Select(a => a.Answer));
        var merged = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var (protocol, answer) in asked)
        {
            if (await answer is not { } metadata)
                continue;
            if (merged.TryGetValue(protocol, out var first))
                foreach (var instance in metadata["instances"]!.AsArray())
                    first["instances"]!.AsArray().Add(instance?.DeepClone());
            else
                merged[protocol] = (JsonObject)metadata.DeepClone();
        }
        return merged;
    }

    /// <summary>
    /// One service's metadata of a protocol, with an <c>instance_id</c> (<c>{service}|{network_id}</c>, the form Synapse
    /// gives and clients pass back as <c>third_party_instance_id</c>) on each instance naming its network; null if invalid.
    /// </summary>
    private async Task<JsonObject?> MetadataAsync(AppServiceRegistration service, string protocol, CancellationToken ct)
    {
        var key = (service.Id, protocol);
        if (_metadata.TryGetValue(key, out var cached) && cached.Expires > clock.GetUtcNow())
            return cached.Metadata;
        if (await client.SendAsync(service, HttpMethod.Get, $"{AppPrefix}/protocol/{Uri.EscapeDataString(protocol)}", null, ct)
            is not { Ok: true, Body: JsonObject metadata } || metadata["instances"] is not JsonArray instances)
            return null;
        foreach (var instance in instances.OfType<JsonObject>())
            if (instance["network_id"] is JsonValue network && network.TryGetValue<string>(out var networkId))
                instance["instance_id"] = new RoomDirectory.AppServiceNetwork(service.Id, networkId).InstanceId;
        _metadata[key] = (metadata, clock.GetUtcNow() + MetadataLifetime);
        return metadata;
    }

    /// <summary>
    /// The users or locations (<paramref name="kind"/>) that the given services find, asked all at once; an answer that
    /// is not a valid result (a <c>protocol</c>, the <paramref name="idField"/> and <c>fields</c>) is left out.
    /// </summary>
    public async Task<JsonArray> LookupAsync(IEnumerable<AppServiceRegistration> services, string pathAndQuery, string idField, CancellationToken ct)
    {
        var answers = await Task.WhenAll(services.Select(s => client.SendAsync(s, HttpMethod.Get, $"{AppPrefix}/{pathAndQuery}", null, ct)));
        var results = new JsonArray();
        foreach (var answer in answers)
            if (answer is { Ok: true, Body: JsonArray found })
                foreach (var item in found.OfType<JsonObject>().Where(item => IsString(item["protocol"]) && IsString(item[idField]) && item["fields"] is JsonObject))
                    results.Add(item.DeepClone());
        return results;
    }

    private static bool IsString(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out _);
}
