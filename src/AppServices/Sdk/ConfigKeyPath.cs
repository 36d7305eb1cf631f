using System.Collections;
using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// Explains a config file's deserialisation error the way an operator reads the file: the YAML key it concerns
/// (<c>hooks[1].rate_limit_per_minute</c>) and what that key takes, never the .NET type behind it.
/// </summary>
internal static class ConfigKeyPath
{
    public static string Explain(string yaml, YamlException error, Type root)
    {
        var (path, scalar) = Find(yaml, error.Start);
        var where = $"line {error.Start.Line}: {(path.Length == 0 ? "(top level)" : path)}";
        if (error.Message.Contains(" not found on type ", StringComparison.Ordinal))
        {
            var parent = path.Contains('.') ? path[..path.LastIndexOf('.')] : "";
            var known = KeysOf(TypeAt(root, parent));
            return $"{where}: unknown key" + (known.Count > 0 ? $" (known here: {string.Join(", ", known)})" : "");
        }
        var target = TypeAt(root, path);
        return target is null
            ? $"{where}: {error.InnerException?.Message ?? error.Message}"
            : $"{where}: {(scalar is null ? "this value" : $"'{scalar}'")} is not {Kind(target)}";
    }

    /// <summary>The key path of the node at <paramref name="mark"/>, and its text when it is a scalar.</summary>
    private static (string Path, string? Scalar) Find(string yaml, Mark mark)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException)
        {
            return ("", null);
        }
        return stream.Documents.Count == 0 ? ("", null) : Find(stream.Documents[0].RootNode, "", mark);
    }

    // Collections carry only their start mark, so a key is found by its own scalar, a value by its scalar or start.
    private static (string, string?) Find(YamlNode node, string path, Mark mark)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                foreach (var (key, value) in mapping.Children)
                {
                    var name = (key as YamlScalarNode)?.Value ?? "?";
                    var child = path.Length == 0 ? name : $"{path}.{name}";
                    if (IsAt(key, mark))
                        return (child, null);
                    if (IsAt(value, mark))
                        return (child, (value as YamlScalarNode)?.Value);
                    if (Find(value, child, mark) is ({ Length: > 0 }, _) found)
                        return found;
                }
                break;
            case YamlSequenceNode sequence:
                foreach (var (item, i) in sequence.Children.Select((item, i) => (item, i)))
                {
                    if (IsAt(item, mark))
                        return ($"{path}[{i}]", (item as YamlScalarNode)?.Value);
                    if (Find(item, $"{path}[{i}]", mark) is ({ Length: > 0 }, _) found)
                        return found;
                }
                break;
        }
        return ("", null);
    }

    private static bool IsAt(YamlNode node, Mark mark) =>
        (node.Start.Line, node.Start.Column) == (mark.Line, mark.Column)
        || node is YamlScalarNode && (node.Start.Line, node.Start.Column).CompareTo((mark.Line, mark.Column)) <= 0
           && (mark.Line, mark.Column).CompareTo((node.End.Line, node.End.Column)) < 0;

    /// <summary>The .NET type the key path leads to in the config class, or null when it leads nowhere.</summary>
    private static Type? TypeAt(Type root, string path)
    {
        Type? type = root;
        foreach (var part in path.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var key = part.Contains('[') ? part[..part.IndexOf('[')] : part;
            type = type is null ? null
                : IsDictionary(type) ? type.GetGenericArguments()[1]
                : type.GetProperties().FirstOrDefault(p => KeyOf(p) == key)?.PropertyType;
            for (var i = part.IndexOf('['); i >= 0 && type is not null; i = part.IndexOf('[', i + 1))
                type = ElementType(type);
        }
        return type;
    }

    private static bool IsDictionary(Type type) => type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>);

    private static string KeyOf(PropertyInfo property) =>
        property.GetCustomAttribute<YamlMemberAttribute>()?.Alias ?? UnderscoredNamingConvention.Instance.Apply(property.Name);

    private static List<string> KeysOf(Type? type) =>
        type is null || type == typeof(string) || typeof(IEnumerable).IsAssignableFrom(type) ? []
            : type.GetProperties().Where(p => p.CanWrite).Select(KeyOf).ToList();

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>) ? type.GetGenericArguments()[0]
        : null;

    private static string Kind(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(int) || type == typeof(long))
            return "a whole number";
        if (type == typeof(double) || type == typeof(decimal))
            return "a number";
        if (type == typeof(bool))
            return "true or false";
        if (type == typeof(string))
            return "a single text value";
        if (IsDictionary(type))
            return "a mapping of keys to values";
        if (ElementType(type) is not null)
            return "a list";
        return $"a section with the keys {string.Join(", ", KeysOf(type))}";
    }
}
