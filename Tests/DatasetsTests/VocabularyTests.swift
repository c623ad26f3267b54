import Datasets
import TensorCore
import XCTest

final class VocabularyTests: XCTestCase {
    func testWordsAreStandardisedAsKerasDoesAndOrderedByFrequency() throws {
        let texts = ["The cat sat.", "the CAT, the hat!", "don't stop"]
        let vocabulary = try Vocabulary(fitting: texts, split: .words)
        // "the" 3, "cat" 2, then the singletons in order of first appearance.
        XCTAssertEqual(vocabulary.tokens, ["", "[UNK]", "the", "cat", "sat", "hat", "dont", "stop"])
        XCTAssertEqual(vocabulary.tokenize("a,b  C-d\ne"), ["ab", "cd", "e"])
        XCTAssertEqual(try vocabulary.encode("The dog sat"), [2, 1, 4])
        XCTAssertEqual(try vocabulary.decode([2, 3, 0, 4]), "the cat sat")
        XCTAssertThrowsError(try vocabulary.decode([8]))
        XCTAssertThrowsError(try vocabulary.decode([-1]))
    }

    func testMaxTokensCountsTheSpecialTokensAndKeepsTheMostFrequent() throws {
        let vocabulary = try Vocabulary(fitting: ["b a b c b a"], split: .words, maxTokens: 4)
        XCTAssertEqual(vocabulary.tokens, ["", "[UNK]", "b", "a"])
        XCTAssertEqual(try vocabulary.encode("c b"), [1, 2])
        XCTAssertThrowsError(try Vocabulary(fitting: ["a"], split: .words, maxTokens: 2)) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .invalidArgument)
        }
        XCTAssertThrowsError(try Vocabulary(fitting: ["  ,.;  "], split: .words))
    }

    func testPaddingAndTruncatingAtEitherEnd() throws {
        let vocabulary = try Vocabulary(fitting: ["a b c d e"], split: .words)
        // a 2, b 3, c 4, d 5, e 6
        let pre = try vocabulary.encode(["a b", "a b c d e"], length: 3)
        XCTAssertEqual(pre.shape, [2, 3])
        XCTAssertEqual(pre.scalars, [0, 2, 3, 4, 5, 6])
        let post = try vocabulary.encode(["a b", "a b c d e"], length: 3, padding: .post, truncating: .post)
        XCTAssertEqual(post.scalars, [2, 3, 0, 2, 3, 4])
        XCTAssertThrowsError(try vocabulary.encode(["a"], length: 0))
    }

    func testCharacterVocabularyWithoutSpecialTokensRejectsUnknownCharacters() throws {
        let vocabulary = try Vocabulary(fitting: ["abba", "cab"], split: .characters, reservingSpecialTokens: false)
        XCTAssertEqual(vocabulary.tokens, ["a", "b", "c"])
        XCTAssertEqual(try vocabulary.encode("cab"), [2, 0, 1])
        XCTAssertEqual(try vocabulary.decode([1, 0]), "ba")
        XCTAssertThrowsError(try vocabulary.encode("abz")) { error in
            XCTAssertTrue("\(error)".contains("\"z\" at position 2"), "\(error)")
        }
        XCTAssertThrowsError(try vocabulary.encode(["ab"], length: 4))
    }

    func testRestoringFromTokensChecksThem() throws {
        let fitted = try Vocabulary(fitting: ["x y x"], split: .words)
        XCTAssertEqual(try Vocabulary(tokens: fitted.tokens, split: .words), fitted)
        XCTAssertThrowsError(try Vocabulary(tokens: ["", "[UNK]", "x", "x"], split: .words)) { error in
            XCTAssertTrue("\(error)".contains("appears twice"), "\(error)")
        }
        XCTAssertThrowsError(try Vocabulary(tokens: ["x", "y"], split: .words))
        XCTAssertThrowsError(try Vocabulary(tokens: [], split: .characters, reservingSpecialTokens: false))
        XCTAssertNotEqual(try Vocabulary(tokens: ["a", "b"], split: .characters, reservingSpecialTokens: false),
                          try Vocabulary(tokens: ["b", "a"], split: .characters, reservingSpecialTokens: false))
    }
}
