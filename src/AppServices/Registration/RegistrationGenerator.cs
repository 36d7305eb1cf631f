using System.Security.Cryptography;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Matrix.AppServices.Registration;

/// <summary>What a bridge asks of the homeserver, to be written as its registration file.</summary>
/// <param name="UserRegex">The user namespace (e.g. <c>@ldap_.*:example\.org</c>); null for none.</param>
/// <param name="UserNamespaceExclusive">Whether nobody else may have users in it (false for a bridge acting as ordinary users).</param>
/// <param name="AliasRegex">The exclusive alias namespace; null for none.</param>
public sealed record RegistrationRequest(
    string Id, string? Url, string SenderLocalpart, string? UserRegex, string? AliasRegex = null, bool ReceiveEphemeral = false,
    bool DeviceData = false, bool RateLimited = false, IReadOnlyList<string>? Protocols = null, bool UserNamespaceExclusive = true);

/// <summary>
/// Writes registration files for our bridges: fresh random tokens, exclusive alias namespaces, regexes single-quoted so
/// YAML leaves their backslashes alone. The result parses with <see cref="RegistrationFile"/>.
/// </summary>
public static class RegistrationGenerator
{
    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public static string ToYaml(RegistrationRequest request, string asToken, string hsToken)
    {
        var namespaces = new YamlMappingNode();
        foreach (var (kind, regex, exclusive) in new[] { ("users", request.UserRegex, request.UserNamespaceExclusive), ("aliases", request.AliasRegex, true) })
            namespaces.Add(kind, regex is null
                ? new YamlSequenceNode()
                : new YamlSequenceNode(new YamlMappingNode
                {
                    { "exclusive", exclusive ? "true" : "false" },
                    { "regex", new YamlScalarNode(regex) { Style = ScalarStyle.SingleQuoted } },
                }));
        namespaces.Add("rooms", new YamlSequenceNode());
        var root = new YamlMappingNode
        {
            { "id", request.Id },
            { "url", request.Url ?? "null" },
            { "as_token", asToken },
            { "hs_token", hsToken },
            { "sender_localpart", request.SenderLocalpart },
            { "rate_limited", request.RateLimited ? "true" : "false" },
            { "receive_ephemeral", request.ReceiveEphemeral ? "true" : "false" },
            { "org.matrix.msc3202", request.DeviceData ? "true" : "false" },
            { "namespaces", namespaces },
        };
        if (request.Protocols is { Count: > 0 } protocols)
            root.Add("protocols", new YamlSequenceNode(protocols.Select(p => new YamlScalarNode(p))));
        using var writer = new StringWriter();
        new YamlStream(new YamlDocument(root)).Save(writer, assignAnchors: false);
        return writer.ToString().Replace("\n...", "").TrimEnd() + "\n";
    }

    /// <summary>
    /// Writes the registration to <paramref name="path"/> with fresh tokens, or keeps the tokens of the file already
    /// there (the homeserver knows them) while updating everything else. Returns the registration as written.
    /// </summary>
    public static AppServiceRegistration WriteFile(string path, RegistrationRequest request, string serverName)
    {
        var (asToken, hsToken) = File.Exists(path) && RegistrationFile.Load(path, serverName) is var existing
            ? (existing.AsToken, existing.HsToken)
            : (NewToken(), NewToken());
        var yaml = ToYaml(request, asToken, hsToken);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, yaml);
        return RegistrationFile.Parse(yaml, serverName, path);
    }
}
