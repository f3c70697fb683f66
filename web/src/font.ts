/**
 * A 5×7 dot-matrix font for printable ASCII (the classic LCD/LED character set): five column
 * bytes per glyph, bit 0 the top row. Characters outside it are drawn as a hollow box.
 */
const GLYPHS =
  '0000000000' + // space
  '00005f0000' + // !
  '0007000700' + // "
  '147f147f14' + // #
  '242a7f2a12' + // $
  '2313086462' + // %
  '3649552250' + // &
  '0005030000' + // '
  '001c224100' + // (
  '0041221c00' + // )
  '082a1c2a08' + // *
  '08083e0808' + // +
  '0050300000' + // ,
  '0808080808' + // -
  '0060600000' + // .
  '2010080402' + // /
  '3e5149453e' + // 0
  '00427f4000' + // 1
  '4261514946' + // 2
  '2141454b31' + // 3
  '1814127f10' + // 4
  '2745454539' + // 5
  '3c4a494930' + // 6
  '0171090503' + // 7
  '3649494936' + // 8
  '064949291e' + // 9
  '0036360000' + // :
  '0056360000' + // ;
  '0814224100' + // <
  '1414141414' + // =
  '0041221408' + // >
  '0201510906' + // ?
  '324979413e' + // @
  '7e1111117e' + // A
  '7f49494936' + // B
  '3e41414122' + // C
  '7f4141221c' + // D
  '7f49494941' + // E
  '7f09090101' + // F
  '3e41415132' + // G
  '7f0808087f' + // H
  '00417f4100' + // I
  '2040413f01' + // J
  '7f08142241' + // K
  '7f40404040' + // L
  '7f0204027f' + // M
  '7f0408107f' + // N
  '3e4141413e' + // O
  '7f09090906' + // P
  '3e4151215e' + // Q
  '7f09192946' + // R
  '4649494931' + // S
  '01017f0101' + // T
  '3f4040403f' + // U
  '1f2040201f' + // V
  '7f2018207f' + // W
  '6314081463' + // X
  '0304780403' + // Y
  '6151494543' + // Z
  '007f414100' + // [
  '0204081020' + // backslash
  '0041417f00' + // ]
  '0402010204' + // ^
  '4040404040' + // _
  '0001020400' + // `
  '2054545478' + // a
  '7f48444438' + // b
  '3844444420' + // c
  '384444487f' + // d
  '3854545418' + // e
  '087e090102' + // f
  '081454543c' + // g
  '7f08040478' + // h
  '00447d4000' + // i
  '2040443d00' + // j
  '007f102844' + // k
  '00417f4000' + // l
  '7c04180478' + // m
  '7c08040478' + // n
  '3844444438' + // o
  '7c14141408' + // p
  '081414187c' + // q
  '7c08040408' + // r
  '4854545420' + // s
  '043f444020' + // t
  '3c4040207c' + // u
  '1c2040201c' + // v
  '3c4030403c' + // w
  '4428102844' + // x
  '0c5050503c' + // y
  '4464544c44' + // z
  '0008364100' + // {
  '00007f0000' + // |
  '0041360800' + // }
  '0201020402'; //  ~

const UNKNOWN = [0x7f, 0x41, 0x41, 0x41, 0x7f];

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;
/** Columns per character: the glyph and one blank column. */
export const CHAR_ADVANCE = GLYPH_WIDTH + 1;

export function glyph(character: string): number[] {
  const code = character.codePointAt(0) ?? 0x20;
  if (code < 0x20 || code > 0x7e) return UNKNOWN;
  const start = (code - 0x20) * 10;
  const columns: number[] = [];
  for (let column = 0; column < GLYPH_WIDTH; column++)
    columns.push(parseInt(GLYPHS.slice(start + column * 2, start + column * 2 + 2), 16));
  return columns;
}

/** The message as columns of 7 bits, one blank column between characters. */
export function columnsOf(text: string): number[] {
  const columns: number[] = [];
  for (const character of text) {
    columns.push(...glyph(character), 0);
  }
  if (columns.length > 0) columns.pop();
  return columns;
}
