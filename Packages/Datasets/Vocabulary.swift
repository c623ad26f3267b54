import TensorCore

/// How ``Vocabulary`` cuts text into tokens.
public enum TokenSplit: String, Sendable, Equatable {
    /// Every character (grapheme cluster) is a token: character-level models.
    case characters
    /// Words, as Keras' `TextVectorization` makes them by default: the text lower-cased, ASCII
    /// punctuation (``Vocabulary/punctuation``) deleted (`lower_and_strip_punctuation`, so
    /// "don't" is "dont" and "a,b" is "ab"), then split on white space.
    case words
}

/// Which end of a sequence ``Vocabulary/encode(_:length:padding:truncating:)`` pads or cuts.
public enum SequenceEnd: String, Sendable, Equatable {
    /// At the start (Keras' `pad_sequences` default for both).
    case pre
    /// At the end.
    case post
}

/// A token vocabulary fitted on text: token ids for a model's `Embedding` or one-hot inputs and
/// back, as Keras' `TextVectorization` (and the older `Tokenizer`) give them.
///
/// ```swift
/// let vocabulary = try Vocabulary(fitting: lines, split: .words, maxTokens: 20_000)
/// let ids = vocabulary.encode(lines, length: 100)          // [lines.count, 100] Float32 ids
/// let text = vocabulary.decode([5, 17, 2])
/// ```
///
/// With `reservingSpecialTokens` (the default, Keras' layout) id 0 is the padding token `""` and
/// id 1 the out-of-vocabulary token `"[UNK]"`, and the fitted tokens follow from id 2, most
/// frequent first (ties in order of first appearance, so fitting is deterministic). Without it the
/// ids are the fitted tokens alone, and a token outside them cannot be encoded: what a character
/// model whose output layer predicts one of exactly those characters wants.
///
/// Fitting costs one pass over the text and a sort of the distinct tokens; encoding one
/// dictionary lookup per token.
public struct Vocabulary: Sendable, Equatable {
    /// The token of each id: `tokens[id]`.
    public let tokens: [String]
    /// How text is cut into tokens.
    public let split: TokenSplit
    /// Whether ids 0 and 1 are the padding and out-of-vocabulary tokens.
    public let reservesSpecialTokens: Bool
    private let ids: [String: Int]

    /// The padding token, id 0 when special tokens are reserved.
    public static let paddingToken = ""
    /// The out-of-vocabulary token, id 1 when special tokens are reserved.
    public static let unknownToken = "[UNK]"

    /// Fits a vocabulary on `texts`: every distinct token, most frequent first, at most
    /// `maxTokens` ids in all (special tokens included, as Keras counts them).
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) when `maxTokens` leaves no room for a fitted
    ///   token, or when the texts hold no token at all.
    public init(fitting texts: [String], split: TokenSplit, maxTokens: Int? = nil, reservingSpecialTokens: Bool = true) throws {
        let reserved = reservingSpecialTokens ? 2 : 0
        if let maxTokens, maxTokens <= reserved {
            throw DatasetError(.invalidArgument, "a vocabulary of at most \(maxTokens) tokens leaves no room beside the \(reserved) special ones")
        }
        var counts: [String: Int] = [:], firstSeen: [String: Int] = [:]
        var order = 0
        for text in texts {
            for token in Vocabulary.tokenize(text, split) {
                counts[token, default: 0] += 1
                if firstSeen[token] == nil {
                    firstSeen[token] = order
                    order += 1
                }
            }
        }
        // The special tokens never come from the text.
        counts[Vocabulary.paddingToken] = nil
        if reservingSpecialTokens { counts[Vocabulary.unknownToken] = nil }
        guard !counts.isEmpty else {
            throw DatasetError(.invalidArgument, "cannot fit a vocabulary: the \(texts.count) text(s) hold no \(split.rawValue) token")
        }
        var fitted = counts.keys.sorted { a, b in
            counts[a]! != counts[b]! ? counts[a]! > counts[b]! : firstSeen[a]! < firstSeen[b]!
        }
        if let maxTokens { fitted = Array(fitted.prefix(maxTokens - reserved)) }
        try self.init(tokens: (reservingSpecialTokens ? [Vocabulary.paddingToken, Vocabulary.unknownToken] : []) + fitted,
                      split: split, reservingSpecialTokens: reservingSpecialTokens)
    }

    /// A vocabulary with the given `tokens` (id `i` is `tokens[i]`), e.g. one saved with a model.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for a repeated token, an empty list, or, with
    ///   special tokens reserved, a list that does not start with `""` and `"[UNK]"`.
    public init(tokens: [String], split: TokenSplit, reservingSpecialTokens: Bool = true) throws {
        if reservingSpecialTokens {
            guard tokens.count >= 2, tokens[0] == Vocabulary.paddingToken, tokens[1] == Vocabulary.unknownToken else {
                throw DatasetError(.invalidArgument, "a vocabulary with special tokens starts with \"\" and \"[UNK]\", got \(tokens.prefix(2))")
            }
        }
        guard !tokens.isEmpty else { throw DatasetError(.invalidArgument, "a vocabulary needs at least one token") }
        var ids: [String: Int] = [:]
        for (i, token) in tokens.enumerated() {
            if let earlier = ids.updateValue(i, forKey: token) {
                throw DatasetError(.invalidArgument, "token \"\(token)\" appears twice in the vocabulary, at ids \(earlier) and \(i)")
            }
        }
        self.tokens = tokens
        self.split = split
        self.reservesSpecialTokens = reservingSpecialTokens
        self.ids = ids
    }

    /// The number of ids, special tokens included: the size of an `Embedding`'s input or a
    /// softmax's output over tokens.
    public var count: Int { tokens.count }

    /// The id of `token`, or nil when it is not in the vocabulary.
    public func id(of token: String) -> Int? { ids[token] }

    /// `text` cut into tokens the way this vocabulary cuts it.
    public func tokenize(_ text: String) -> [String] { Vocabulary.tokenize(text, split) }

    /// The ids of `text`'s tokens; tokens outside the vocabulary become id 1 (`"[UNK]"`).
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for a token outside a vocabulary without
    ///   special tokens, naming it and its position.
    public func encode(_ text: String) throws -> [Int] {
        try tokenize(text).enumerated().map { position, token in
            if let id = ids[token] { return id }
            guard reservesSpecialTokens else {
                throw DatasetError(.invalidArgument, "token \"\(token)\" at position \(position) is not in the vocabulary of \(count) tokens")
            }
            return 1
        }
    }

    /// The ids of each text as one row of a `[texts.count, length]` tensor (Float32 ids, what
    /// `Embedding` takes), padded with id 0 and cut to `length` at the `padding` and
    /// `truncating` ends (Keras' `pad_sequences`).
    ///
    /// - Throws: as ``encode(_:)``; ``DatasetError`` (`.invalidArgument`) for `length < 1` or a
    ///   vocabulary without the padding token.
    public func encode(_ texts: [String], length: Int, padding: SequenceEnd = .pre, truncating: SequenceEnd = .pre) throws -> Tensor {
        guard length >= 1 else { throw DatasetError(.invalidArgument, "sequences need a length of at least 1, got \(length)") }
        guard reservesSpecialTokens else {
            throw DatasetError(.invalidArgument, "padding needs id 0 to be the padding token: fit the vocabulary with special tokens")
        }
        var rows: [Float] = []
        rows.reserveCapacity(texts.count * length)
        for text in texts {
            var ids = try encode(text)
            if ids.count > length { ids = truncating == .pre ? Array(ids.suffix(length)) : Array(ids.prefix(length)) }
            let pad = [Int](repeating: 0, count: length - ids.count)
            rows += (padding == .pre ? pad + ids : ids + pad).map(Float.init)
        }
        return Tensor(shape: [texts.count, length], scalars: rows)
    }

    /// The text of `ids`: tokens joined (with a space between words), padding left out.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for an id outside `0..<count`.
    public func decode(_ ids: [Int]) throws -> String {
        let words = try ids.compactMap { id -> String? in
            guard id >= 0 && id < count else {
                throw DatasetError(.invalidArgument, "id \(id) is outside the vocabulary's 0..<\(count)")
            }
            return reservesSpecialTokens && id == 0 ? nil : tokens[id]
        }
        return words.joined(separator: split == .words ? " " : "")
    }

    static func tokenize(_ text: String, _ split: TokenSplit) -> [String] {
        switch split {
        case .characters:
            return text.map { String($0) }
        case .words:
            var words: [String] = [], current = ""
            for c in text.lowercased() {
                if c.isWhitespace {
                    if !current.isEmpty { words.append(current) }
                    current = ""
                } else if !punctuation.contains(c) {
                    current.append(c)
                }
            }
            if !current.isEmpty { words.append(current) }
            return words
        }
    }

    /// The characters `.words` deletes before splitting: Keras' `string.punctuation` set.
    public static let punctuation = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

    /// Same tokens, split and special tokens.
    public static func == (a: Vocabulary, b: Vocabulary) -> Bool {
        a.tokens == b.tokens && a.split == b.split && a.reservesSpecialTokens == b.reservesSpecialTokens
    }
}
