using System.Text.Json;
using System.Text.Json.Nodes;

namespace SleapRtc.Protocol.Signaling;

/// <summary>
/// The classic discover_peers filter semantics: role exact, tags match-any, properties equal or
/// compared with $gte/$lte/$eq (a missing property fails $gte/$lte). Empty or absent parts do not filter,
/// as in Python where an empty list or dict is falsy. Unknown operators are ignored like classic does.
/// </summary>
public static class PeerFilter
{
    public static bool Matches(JsonObject? filters, string role, JsonObject? metadata) => Compile(filters).Matches(role, metadata);

    /// <summary>Reads the filter once, so matching it against a thousand peers does no filter lookups per peer.</summary>
    public static CompiledPeerFilter Compile(JsonObject? filters)
    {
        if (filters is null) return CompiledPeerFilter.MatchAll;
        var role = filters.GetString("role") is { Length: > 0 } r ? r : null;
        var tags = filters.TryGetPropertyValue("tags", out var tagsNode) && tagsNode is JsonArray { Count: > 0 } wanted ? wanted.ToArray() : null;
        var properties = filters.GetObject("properties") is { Count: > 0 } p ? p.ToArray() : null;
        return new CompiledPeerFilter(role, tags, properties);
    }

    internal static bool PropertiesMatch(KeyValuePair<string, JsonNode?>[] wanted, JsonObject? metadata)
    {
        var properties = metadata?.GetObject("properties");
        foreach (var (key, condition) in wanted)
        {
            JsonNode? actual = null;
            var present = properties is not null && properties.TryGetPropertyValue(key, out actual);
            if (!PropertyMatches(condition, present, actual)) return false;
        }
        return true;
    }

    internal static bool AnyTagMatches(JsonNode?[] wanted, JsonObject? metadata)
    {
        if (metadata is null || !metadata.TryGetPropertyValue("tags", out var have) || have is not JsonArray haveTags) return false;
        foreach (var w in wanted)
            foreach (var h in haveTags)
                if (ValuesEqual(w, h)) return true;
        return false;
    }

    private static bool PropertyMatches(JsonNode? condition, bool present, JsonNode? actual)
    {
        if (condition is not JsonObject operators) return present && ValuesEqual(condition, actual);

        foreach (var (op, operand) in operators)
        {
            switch (op)
            {
                case "$gte":
                    if (!present || Compare(actual, operand) is not (>= 0)) return false;
                    break;
                case "$lte":
                    if (!present || Compare(actual, operand) is not (<= 0)) return false;
                    break;
                case "$eq":
                    if (!present || !ValuesEqual(actual, operand)) return false;
                    break;
            }
        }
        return true;
    }

    /// <summary>Orders two JSON scalars of the same kind (numbers or strings); null when Python would raise TypeError.</summary>
    private static int? Compare(JsonNode? left, JsonNode? right)
    {
        if (TryNumber(left, out var a) && TryNumber(right, out var b)) return a.CompareTo(b);
        if (TryString(left, out var s) && TryString(right, out var t)) return string.CompareOrdinal(s, t);
        return null;
    }

    /// <summary>Python equality on JSON values: numbers by value (1 == 1.0), strings ordinal, containers structurally.</summary>
    public static bool ValuesEqual(JsonNode? left, JsonNode? right)
    {
        if (left is null || right is null) return left is null && right is null;
        if (left is JsonValue ls && right is JsonValue rs && ls.TryGetValue<string>(out var a1) && rs.TryGetValue<string>(out var b1))
            return string.Equals(a1, b1, StringComparison.Ordinal);
        if (TryNumber(left, out var a) && TryNumber(right, out var b)) return a == b;
        return JsonNode.DeepEquals(left, right);
    }

    private static bool TryNumber(JsonNode? node, out decimal number)
    {
        number = 0;
        if (node is not JsonValue value) return false;
        var kind = value.GetValueKind();
        if (kind == JsonValueKind.True || kind == JsonValueKind.False)
        {
            // Python: True == 1 and True >= 1 hold, because bool is an int subclass.
            number = kind == JsonValueKind.True ? 1 : 0;
            return true;
        }
        if (kind != JsonValueKind.Number) return false;
        if (value.TryGetValue<long>(out var integer))
        {
            number = integer;
            return true;
        }
        if (value.TryGetValue<int>(out var small))
        {
            number = small;
            return true;
        }
        if (value.TryGetValue<decimal>(out number)) return true;
        if (value.TryGetValue<double>(out var d) && !double.IsNaN(d) && Math.Abs(d) < 7.9e28)
        {
            number = (decimal)d;
            return true;
        }
        return decimal.TryParse(value.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out number);
    }

    private static bool TryString(JsonNode? node, out string text)
    {
        text = "";
        return node is JsonValue value && value.GetValueKind() == JsonValueKind.String && value.TryGetValue(out text!);
    }
}

/// <summary>A discover_peers filter read once; see <see cref="PeerFilter"/> for the semantics.</summary>
public sealed class CompiledPeerFilter
{
    public static readonly CompiledPeerFilter MatchAll = new(null, null, null);

    private readonly string? _role;
    private readonly JsonNode?[]? _anyTags;
    private readonly KeyValuePair<string, JsonNode?>[]? _properties;

    internal CompiledPeerFilter(string? role, JsonNode?[]? anyTags, KeyValuePair<string, JsonNode?>[]? properties)
    {
        _role = role;
        _anyTags = anyTags;
        _properties = properties;
    }

    public bool Matches(string role, JsonObject? metadata)
    {
        if (_role is not null && !string.Equals(_role, role, StringComparison.Ordinal)) return false;
        if (_anyTags is not null && !PeerFilter.AnyTagMatches(_anyTags, metadata)) return false;
        return _properties is null || PeerFilter.PropertiesMatch(_properties, metadata);
    }
}

/// <summary>The classic update_metadata merge: tags = union (old order first), properties = shallow merge, other keys replaced.</summary>
public static class MetadataMerge
{
    public static JsonObject Merge(JsonObject? current, JsonObject update)
    {
        var merged = current?.DeepClone() as JsonObject ?? new JsonObject();
        foreach (var (key, value) in update)
        {
            if (key == "tags" && value is JsonArray newTags && merged["tags"] is JsonArray oldTags)
            {
                foreach (var tag in newTags)
                    if (!oldTags.Any(t => PeerFilter.ValuesEqual(t, tag))) oldTags.Add(tag?.DeepClone());
            }
            else if (key == "properties" && value is JsonObject newProperties && merged["properties"] is JsonObject oldProperties)
            {
                foreach (var (name, property) in newProperties) oldProperties[name] = property?.DeepClone();
            }
            else
            {
                merged[key] = value?.DeepClone();
            }
        }
        return merged;
    }
}
