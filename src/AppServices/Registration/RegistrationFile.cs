using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Matrix.AppServices.Registration;

public sealed class RegistrationException(string message) : Exception(message);

/// <summary>
/// Reads registration files (YAML, as bridges generate them). Keys this server does not use are ignored, as other
/// servers ignore them; missing or mistyped required keys and invalid regular expressions are errors that name the
/// file and the key.
/// </summary>
public static class RegistrationFile
{
    public static AppServiceRegistration Load(string path, string serverName)
    {
        if (!File.Exists(path))
            throw new RegistrationException($"appservice registration '{path}' does not exist");
        return Parse(File.ReadAllText(path), serverName, path);
    }

    public static AppServiceRegistration Parse(string yaml, string serverName, string source = "registration")
    {
        YamlMappingNode root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            root = stream.Documents.Count == 1 && stream.Documents[0].RootNode is YamlMappingNode map
                ? map
                : throw new RegistrationException($"{source}: a registration is one YAML mapping");
        }
        catch (YamlException e)
        {
            throw new RegistrationException($"{source}: not valid YAML (line {e.Start.Line}): {e.Message}");
        }

        string Required(string key) => Scalar(root, key, source) is { Length: > 0 } value
            ? value
            : throw new RegistrationException($"{source}: '{key}' is required");

        var id = Required("id");
        var asToken = Required("as_token");
        var hsToken = Required("hs_token");
        var senderLocalpart = Required("sender_localpart");
        var url = Scalar(root, "url", source) is { Length: > 0 } u && u != "null" ? u : null;
        if (url is not null && !(Uri.TryCreate(url, UriKind.Absolute, out var parsed) && parsed.Scheme is "http" or "https"))
            throw new RegistrationException($"{source}: 'url' must be an http(s) URL or null");
        if (asToken == hsToken)
            throw new RegistrationException($"{source}: as_token and hs_token must differ");

        var namespaces = root.Children.TryGetValue(new YamlScalarNode("namespaces"), out var ns)
            ? ns as YamlMappingNode ?? throw new RegistrationException($"{source}: 'namespaces' must be a mapping")
            : null;
        return new AppServiceRegistration(
            id, url, asToken, hsToken, $"@{senderLocalpart}:{serverName}",
            namespaces is null ? Namespaces.None : new Namespaces(
                NamespaceList(namespaces, "users", source), NamespaceList(namespaces, "aliases", source), NamespaceList(namespaces, "rooms", source)),
            Bool(root, "rate_limited", source) ?? true,
            root.Children.TryGetValue(new YamlScalarNode("protocols"), out var protocols) && protocols is YamlSequenceNode list
                ? list.Children.OfType<YamlScalarNode>().Select(p => p.Value ?? "").Where(p => p.Length > 0).ToList()
                : [],
            Bool(root, "receive_ephemeral", source) ?? Bool(root, "de.sorunome.msc2409.push_ephemeral", source) ?? Bool(root, "push_ephemeral", source) ?? false,
            Bool(root, "org.matrix.msc3202", source) ?? false);
    }

    private static string? Scalar(YamlMappingNode map, string key, string source) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node)
            ? node is YamlScalarNode scalar ? scalar.Value : throw new RegistrationException($"{source}: '{key}' must be a string")
            : null;

    private static bool? Bool(YamlMappingNode map, string key, string source) => Scalar(map, key, source) switch
    {
        null => null,
        "true" or "True" => true,
        "false" or "False" => false,
        var other => throw new RegistrationException($"{source}: '{key}' must be true or false, not '{other}'"),
    };

    private static List<Namespace> NamespaceList(YamlMappingNode namespaces, string kind, string source)
    {
        if (!namespaces.Children.TryGetValue(new YamlScalarNode(kind), out var node) || node is YamlScalarNode { Value: null or "" or "null" })
            return [];
        if (node is not YamlSequenceNode entries)
            throw new RegistrationException($"{source}: 'namespaces.{kind}' must be a list");
        var list = new List<Namespace>();
        foreach (var entry in entries.Children)
        {
            if (entry is not YamlMappingNode map || Scalar(map, "regex", source) is not { Length: > 0 } regex)
                throw new RegistrationException($"{source}: every entry of 'namespaces.{kind}' needs a 'regex'");
            try
            {
                list.Add(new Namespace(regex, Bool(map, "exclusive", source) ?? false));
            }
            catch (ArgumentException e)
            {
                throw new RegistrationException($"{source}: 'namespaces.{kind}' regex '{regex}' is invalid: {e.Message}");
            }
        }
        return list;
    }

    /// <summary>Checks a set of registrations together: IDs and tokens must be unique across them.</summary>
    public static void ValidateSet(IReadOnlyList<AppServiceRegistration> registrations)
    {
        foreach (var (name, select) in new (string, Func<AppServiceRegistration, string>)[]
                 { ("id", r => r.Id), ("as_token", r => r.AsToken), ("hs_token", r => r.HsToken), ("sender_localpart", r => r.SenderUserId) })
            if (registrations.GroupBy(select).FirstOrDefault(g => g.Count() > 1) is { } duplicate)
                throw new RegistrationException(
                    $"appservices {string.Join(" and ", duplicate.Select(r => $"'{r.Id}'"))} share the same {name}");
        if (registrations.SelectMany(r => new[] { r.AsToken, r.HsToken }).GroupBy(t => t).Any(g => g.Count() > 1))
            throw new RegistrationException("an as_token of one appservice is the hs_token of another");
    }
}
