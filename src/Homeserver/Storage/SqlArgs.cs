using System.Collections.Concurrent;
using System.Data;
using System.Reflection;
using Dapper;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// Statement parameters built up by name (lists, merged statements), each handed to the command with its column type.
/// Used instead of Dapper's <c>DynamicParameters</c>, which reads every parameter's <c>DbType</c> back after setting
/// its value: Npgsql works that out from the value anew on each read, a measurable share of the CPU a send costs.
/// </summary>
public sealed class SqlArgs : SqlMapper.IDynamicParameters
{
    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> PropertiesByType = new();
    private static readonly ConcurrentDictionary<Type, Dictionary<string, PropertyInfo>> PropertyNamesByType = new();

    private readonly List<(string Name, object? Value, DbType? Type)> _parameters;
    private Dictionary<string, int>? _byName;

    public SqlArgs(int capacity = 0) => _parameters = new(capacity);

    /// <summary>Starts with an object's public properties (an anonymous type), typed by their declared types.</summary>
    public SqlArgs(object template) : this() => AddFrom(null, template);

    public void Add(string name, object? value)
    {
        _parameters.Add((name, value, value is null ? null : TypeOf(value.GetType())));
        _byName = null;
    }

    /// <summary>
    /// Adds a statement's arguments (an object's properties or another <see cref="SqlArgs"/>), named as statement
    /// <paramref name="batchIndex"/> of a merged batch spells them (<see cref="BatchNames"/>), or as they are when null.
    /// </summary>
    public void AddFrom(int? batchIndex, object? args)
    {
        _byName = null;
        if (args is SqlArgs other)
        {
            _parameters.EnsureCapacity(_parameters.Count + other._parameters.Count);
            foreach (var (name, value, type) in other._parameters)
                _parameters.Add((Named(name, batchIndex), value, type));
        }
        else if (args is not null)
        {
            foreach (var property in PropertiesOf(args))
                _parameters.Add((Named(property.Name, batchIndex), property.GetValue(args), TypeOf(property.PropertyType)));
        }
    }

    private static string Named(string name, int? batchIndex) => batchIndex is { } index ? BatchNames.Parameter(name, index) : name;

    /// <summary>The value and column type of the argument called <paramref name="name"/> (any case) in a statement's arguments.</summary>
    public static (object? Value, DbType? Type) Lookup(object? args, string name)
    {
        if (args is SqlArgs list && list.TryFind(name, out var found))
            return found;
        if (args is not null and not SqlArgs && PropertiesByName(args.GetType()).TryGetValue(name, out var property))
            return (property.GetValue(args), TypeOf(property.PropertyType));
        throw new ArgumentException($"the statement uses @{name}, which its arguments do not have", nameof(args));
    }

    private bool TryFind(string name, out (object? Value, DbType? Type) found)
    {
        // Generated lists can name hundreds of parameters: those are looked up through an index.
        _byName ??= _parameters.Count > 16
            ? _parameters.Select((p, i) => (p.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.OrdinalIgnoreCase)
            : null;
        var index = _byName is not null
            ? _byName.GetValueOrDefault(name, -1)
            : _parameters.FindIndex(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
        found = index >= 0 ? (_parameters[index].Value, _parameters[index].Type) : default;
        return index >= 0;
    }

    /// <summary>Whether an object's properties can all be bound as single values (none is a list Dapper would expand).</summary>
    public static bool IsFlat(object template) =>
        PropertiesOf(template).All(p => p.PropertyType == typeof(string) || p.PropertyType == typeof(byte[]) || !typeof(System.Collections.IEnumerable).IsAssignableFrom(p.PropertyType));

    private static PropertyInfo[] PropertiesOf(object template) => PropertiesOf(template.GetType());

    private static PropertyInfo[] PropertiesOf(Type type) =>
        PropertiesByType.GetOrAdd(type, t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).ToArray());

    private static Dictionary<string, PropertyInfo> PropertiesByName(Type type) =>
        PropertyNamesByType.GetOrAdd(type, t => PropertiesOf(t).ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase));

    void SqlMapper.IDynamicParameters.AddParameters(IDbCommand command, SqlMapper.Identity identity) => AddTo(command);

    public void AddTo(IDbCommand command)
    {
        // Microsoft.Data.Sqlite looks a bare name up, then under each of its three prefixes, every lookup a linear
        // search of the statement's names; named as the statement spells it, the first lookup finds it.
        var sqlite = command is Microsoft.Data.Sqlite.SqliteCommand;
        foreach (var (name, value, type) in _parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = sqlite ? BatchNames.AsWritten(name) : name;
            Bind(parameter, value, type);
            command.Parameters.Add(parameter);
        }
    }

    /// <summary>Sets a parameter's value as the database takes it (null as DBNull, an enum as its number) and its column type when known.</summary>
    public static void Bind(IDataParameter parameter, object? value, DbType? type)
    {
        parameter.Value = value switch
        {
            null => DBNull.Value,
            Enum e => Convert.ChangeType(e, Enum.GetUnderlyingType(e.GetType()), System.Globalization.CultureInfo.InvariantCulture),
            _ => value,
        };
        if (type is { } known)
            parameter.DbType = known;
    }

    /// <summary>The column type of a value's type, so a null value still has one.</summary>
    private static DbType? TypeOf(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(string) => DbType.String,
        var t when t == typeof(long) => DbType.Int64,
        var t when t == typeof(int) => DbType.Int32,
        var t when t == typeof(double) => DbType.Double,
        var t when t == typeof(bool) => DbType.Boolean,
        var t when t == typeof(byte[]) => DbType.Binary,
        _ => null,
    };
}
