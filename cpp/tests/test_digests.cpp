// MD5, SHA-1 and SHA-256 (trafficsplit/hashing/digests.hpp): the RFC 1321 test suite, the
// FIPS 180 examples (NIST's "abc", 448-bit and one-million-'a' messages), every length 0..200 of a
// fixed pattern against Python's hashlib, and inputs split across parts at every point; each on
// every instruction path the CPU has (portable, SHA extensions, AVX2 and AVX-512 lanes for
// md5_many), forced in turn with detail::set_hash_paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "trafficsplit/hashing/digests.hpp"

namespace ts = trafficsplit;

namespace {

using DigestFunction = void (*)(const std::string_view*, size_t, uint8_t*);

struct Algorithm {
  const char* name;
  DigestFunction digest;
  size_t size;
};

const Algorithm kMd5{
    "md5", [](const std::string_view* p, size_t n, uint8_t* out) { ts::md5(p, n, out); }, 16};
const Algorithm kSha1{
    "sha1", [](const std::string_view* p, size_t n, uint8_t* out) { ts::sha1(p, n, out); }, 20};
const Algorithm kSha256{
    "sha256", [](const std::string_view* p, size_t n, uint8_t* out) { ts::sha256(p, n, out); }, 32};

std::string hex_digest(const Algorithm& algorithm, const std::vector<std::string_view>& parts) {
  uint8_t out[32];
  algorithm.digest(parts.data(), parts.size(), out);
  static const char kHex[] = "0123456789abcdef";
  std::string text;
  for (size_t i = 0; i < algorithm.size; ++i) {
    text += kHex[out[i] >> 4];
    text += kHex[out[i] & 15];
  }
  return text;
}

std::string hex_digest(const Algorithm& algorithm, std::string_view data) {
  return hex_digest(algorithm, std::vector<std::string_view>{data});
}

// The pattern byte i = (i * 167 + 13) mod 256: every byte value appears, high bit set included.
std::string pattern(size_t length) {
  std::string data(length, '\0');
  for (size_t i = 0; i < length; ++i) data[i] = static_cast<char>((i * 167 + 13) & 0xFF);
  return data;
}

// The digests of pattern(n) for n = 0..200, made with Python's hashlib by:
//   data = bytes((i * 167 + 13) & 0xFF for i in range(200))
//   for name in ("md5", "sha1", "sha256"):
//       for n in range(201): print(f'"{hashlib.new(name, data[:n]).hexdigest()}",')

constexpr const char* kMd5ByLength[201] = {
    "d41d8cd98f00b204e9800998ecf8427e", "dcb9be2f604e5df91deb9659bed4748d",
    "589595309910f586045bee15bd36c36c", "5edefab10a615a1d2801e8e5f2387821",
    "8ecb774932d0416a96c3912632511af4", "24359b685a018b7d8b0c180e3f73be84",
    "506e7deb85d0e9b2d036854f7fb436a0", "283ce5a11c9a074ea99be04cc7b6d12b",
    "bf868b178f02947e9c5f0065b9344c27", "56bf545c4682452115923a1c007f607d",
    "e420a73499fcfe8d817097dd52450ecb", "6d4db303e0d10b826786cc1313f7ac67",
    "9459ea418417f31fbf23120a2f3bdab1", "7178874fce2e60980533cdbe2827fd39",
    "44742913c4692f55f94a1c2acff3866a", "50e663f3bc5ef09be11f3e110395536c",
    "34e5beb8f251b60f785f4e8eebaf101a", "b9ad021d1b82f07231c57ae87e2b3759",
    "8b265f2c0484e80a161ed17dc76635db", "5086be4f8adee509526228666a4c90f8",
    "bc5dd1dfca9fd479f2a0d1bfb5e8dfda", "1a57bccb328dd00bd1bc2b51482f361e",
    "f9a11596bb173f9066eca3783691609f", "75fe74ae1decc06900b9e7a649007098",
    "32803dd775cad2de5d2ef1502a383a62", "24efe5a3cb49c47adacab49e70673b26",
    "5e309ca2075154b284b007fc3d36f8f0", "db2195191fa21e1ecf42ac70099cd499",
    "0a02ab9cb033368a89cef8ed58b88582", "e10e12dacc3e222cea0e69209a30e979",
    "96c457c2d35699639e938d8e8bc1f51c", "35cb80b09895deed3333b6a1c6fb0ac1",
    "ccb3a7ad5ac7c9bb64ed96be021397cc", "db20660935290e3dc730a824f374ebdf",
    "a2bd47363a3c09edb8e968470d73ba54", "aa2425e942fa9763c80ea8204b8071f3",
    "719716533e75a0825cb5cc96b49b265d", "4f4f2fb3c8a3f6f06e1cc79530348ef7",
    "368cd1aa89527e71064aaf3067ed1355", "e5fc2d424e55eedc162eb0a3a00166a0",
    "6943c47f5eb83c1a1b9988992cf2283f", "82e608ac28663673be2b0805fdae7a46",
    "c3a36a8f186784fe66ac7d08fdaabbb6", "79721182bfb6d38421b00e29ed1d1157",
    "9dd1b7df516eca632f0296822f37001a", "91cca0cc517ca6ad03333e517109b358",
    "89ef7d24656ee401b356b40531908b8f", "0cd0b1b1623ac02ce203232f5ecd0f1a",
    "2c76852ea3a7a4b73a2940a7c2d196f1", "d62409e4c5162f63c8d4f237fbdbf8ab",
    "b034149ff86ca1563db4ef080a1b2893", "97dc095f44bb2191d5c66bb283381c7c",
    "29fd33a651c4f758220f5ce3012c896d", "285c0acfaa8741e97ff0ab07198ac89c",
    "48731ee500d86f13f79dda1746dedb6c", "63f2b43e0234f014ba086687f7ec7e4d",
    "129a7df2069f6dcc689cbeed82142a42", "141a2b37feaa5343465412f413f5569a",
    "ba8a7096721661f6f91e051d66cf8214", "3d21933592e2b9fd2b8a6c58aca26b9a",
    "1d5e8b7bea64dc272957f637a3b468b6", "af26bd138c0808f055a111636ca217c8",
    "b66ce7bc5b462017b60072ef2310c27a", "95ae047ff945b6702ed7bd87e7ccd08d",
    "0741d4196478884c19bf239ab5442e2f", "913e0b1e4763382ffb6125227bb42e56",
    "369398c21fe28e730693ae07152cab5b", "5aa67d773678032b512bffff6f3881e5",
    "0652ca5175bd27d621b84bcb42c0332a", "d1595688abe580f814aa310eac8514fe",
    "b8760d060056de8acccd8e0355647a7a", "c921d1541d00b039e4a8b75033c05c14",
    "2ba2917ddfb8bd7f82958ef7de6913fe", "f8b0891dbfa84fea60bdab3036127252",
    "432013a7cf1c14ff572d44493afbe549", "b9abacd491e18b58dcbaf62f5d965edf",
    "b8dfadf2495a27a570efaeb2240d10dc", "786ef19365edc01bfd9de77ec0c20a8a",
    "d089fec29d6d2b9669b041d02f5614d6", "8f121001be072f2b119bf85fa5e5a4c8",
    "7e3d3f81bf6a43c56cf35e3e5a8349cb", "4b703220b85daac17079bffcca8071e3",
    "84481ef2820eaa087e82d3642f2d0fb7", "9b8ada3eb6d875a00957c59db2af31cc",
    "b4d9aad3cbaddae6f4fae9c6fb2a6abb", "5a63d9f88a083e6b7053b3736c21ea20",
    "2bee3c9dc89f4043ba3ed9d60a971831", "d3ba12dd5222da9704d09b89d824b2b8",
    "0abea6f55d79f0424b00513f253a8397", "a0d008ae50b9b37aa21b23e65920062d",
    "37d65ea620f5ee9df76378366cfd8d67", "0df79b7f92ecfdff272d2a2ff8042d88",
    "ce5df582faced08a3a1875322f45d762", "1209a614baa32e92d916c003fa44c38a",
    "093c33c463e9dad6b9b4c6fd63051b8e", "bf9ecd5ebc976818a9b18227dff25548",
    "e6abd4c6dd06e6a2d733bab9af5c91ba", "74acf08260a5200f6c6858bd4bcee613",
    "32e74636744047ff2a309a2212e16700", "c0f62293d1cafa148e48b48497498bfe",
    "27b8ce8f423a166afa8ae17cb20eca52", "785e7bfbb28292939e5c860c409b0926",
    "08c000c6fda55a3f8401db44bc63f51f", "9958eea1211f85e2e93ec0a171e745d1",
    "c828d340963015c02c98047c2e8eefeb", "d8d78261f8944175f5d6b35da421ebf2",
    "899acfdb77b9cdfa3bb1129b045410e7", "01eb46d9d9d2c07a0bc9a2deabfb983c",
    "a8a6b9fe1667e61dbd5af7ebeda89acc", "bf62b086233f8e38c08679ca37de1a94",
    "225b11ad9647ef92d332ee3535f266e8", "7d7d6b16f16245394550666da6d0ade2",
    "3f0b51095db3978dfd35d74f57f41775", "5e649e4cbe23f91047fd544ad1e3961f",
    "325f4d6663d2ccf2e490c0069fea7eab", "085588a3f660fff6ddb4dba568f47c53",
    "c45ca34cac10602893e49f1b7cf9ec57", "693590f0ea1799bf9610838763b0c87d",
    "5ed81a2109b5940df9f166355ad49799", "47919582a0bb945ea9e8807971ec0bbc",
    "75084d12b3187adcd38eea577ba05cdd", "1c68c501e004a14730279b365116f52a",
    "be5c5df280f8e68097787ee1f5322087", "2848f85dbb2fdf977001c993d66363d7",
    "b663681c2e05f84db3be1fea7cf8f9b3", "3fbc714ee8166904b02465acdb180fe2",
    "2c434159498b876966b0e63aa54f8a15", "1e64802a75fd06dcdc53483bd621a1f3",
    "4506929ce5cac6afcee12bd44aaf184f", "be04c254e90b4c572685a02d1a10db90",
    "53101e3cd0b41d5400dbaaa0209ee648", "f1cbd1981a3e96dd8bd353be75e80b2a",
    "8957274a0c73c7e54117ebbe2cc8dad5", "c73c116bb63669b1a2c2157ba50a1310",
    "393c7a1b8040d471816462e2f31993ee", "818331f5ac0e1db15e54aa9d830c0843",
    "eb4f5ea7399850f19b90bf1aac465455", "6d90c0d4384f9fb0535412010fafa155",
    "36cf1634e59ad048d46e026b44e7ac12", "0ba0cb54e1a352ae7529be20c5eecea4",
    "9c9130a9212eeedba9aba2850a70c33b", "6da048565cc55403a2ae12871b969ce4",
    "c954eb7b4559a51ac3dc09a7191adea4", "b600c1db7c51d739e6df62771eedd65b",
    "478c1a7e94f10040f1809c14645d08f2", "cbaba3044cce4381e3b3b12690159284",
    "a30e498217a1173991cd1ac970ffc413", "a93346caf0ed7f07a7420d09f9db460d",
    "299cd0f7f04bc1381f6664993e32ac5d", "03ec5dcbfa74e461e82e7cef26516bab",
    "f3edcf7800399806ee6e390fa4291450", "22449320dd1d5c6103ee7f18679b315b",
    "74aa25180e5be24c48d041615f75f905", "3c8b7076012d6b934479a0245f7233d6",
    "9a6296d95c6b2d89c4c14f8285ac6d00", "415347fc61027814255c4f8e0ecfcdd5",
    "41ad2c679fb6ab6cb64b8084b0b43ffc", "3abf2a120a2fe8df224bc6e4b49e9612",
    "e1d4f60fe0d3e59c4ac6496db8fde35b", "d7c195d82459e788e9a947760fc62c4f",
    "c6c697f7e0131f490c46dfb746448424", "d5af3850ffbe6333afd497d9281ed07d",
    "28d2f83aa3c741349dbd6d8047198ff7", "ab0c35ff1443427a80ee960511da9f6d",
    "44e60d969a929f7763c4ed2bb9309f29", "040889c289eb648bc12e0310fa2d70a5",
    "a0673bfa48b57f9984b325a9478487e9", "6419296ea786a2890b7a7320b5b5de21",
    "2d360d686058c938616fa50d433e8783", "18446b3eb7e034271e821d19959be1e3",
    "231b5a65e57cd741ab87f4b6b7f5ab92", "7bd67a02233ad3e7f4b5731afa1e417b",
    "2f6ac122669ddc9b8bcc83cd614fc9c8", "cfa5c1f2ad360f7fff42ead5457fb57f",
    "2c28488599d3139752a7d5f6e5d972ec", "a60c8fe39977d9406bf6a55930d2d0f4",
    "be537abfff3718546ac1333469e4f62d", "cdc915dfc51abc068a4dcd5dd809ae19",
    "bacc5023858e0dc2b3bb8571b6381fb6", "ecba609cb36d9593092bc6e49f7bf304",
    "6ccb2e27d2d73dc7c720bcf903ebbacd", "0e9a23ee41c5f308ada3f3f51c0c2478",
    "b883b7daedf0a4630b7cd19031d38d17", "b406d2f3a013767c5204d9b4d30a1b37",
    "4ad030ec96cee91da87c7ab44e75783a", "2000a0059477489318148b83f71d198b",
    "3c1624d68140ecca478159dc1bb4c320", "8935fa938baab561d7cb9715dbed6e85",
    "67f77599fd03edcdc006a0d751acfead", "ea081e05d40516cf32ffb503c20d0d6a",
    "779037490dc1b6d5736182e02fd3a256", "f4d2b062fe239b667c3bede6621637e6",
    "4a0e731d27841eabc570f3f318b1cdc7", "ea8ed7343788ac59cc90fc2e3540b905",
    "7028fd6ca9806c1582f977cadab0aab2", "21da4887c4b6ae1f6b6e3096b6601097",
    "20131fbf9edfae52598993a0b99b9248", "06c06af7b6053ef9c4fdd17e79114e2e",
    "9efccbf46e53ac19a8d243a3402fde37", "ca160cf6e0153358ffb111a5c624acee",
    "f68674f3c396bf12dbb87682c1cd9a07",
};

constexpr const char* kSha1ByLength[201] = {
    "da39a3ee5e6b4b0d3255bfef95601890afd80709", "11f4de6b8b45cf8051b1d17fa4cde9ad935cea41",
    "19dff668397dba98d1fe2d34f2d8a57291492548", "02326a7c3345b141c062f696179bcf6464b5326f",
    "068f8eb0348cd9c4331f1a40e965f93801f6e3cf", "1748d037b543403decef80f7cd66b43f36cb34c2",
    "232412b24dfc01391e5ca624b83e51c7334bee91", "5d7f524b43814ed4f7c21897af658736dbef6ee9",
    "b46d84ac5b4ad396149016b31bec09a9f6249944", "3188a90d583a2ccebef6553c6d7dc030b6029caa",
    "5728a44499e4939e29c5c50749b19fb3fae8d5b5", "78dd011161fae6651e393fce905b84819229e470",
    "a698952a850c9abe8c9c1df3b4deccfd07e7d603", "9835cda624274a5585ed0e3ccaf4df29cff3aefb",
    "6ae61924d064024a249d7220e41a651f2834786d", "fcc2b2a9979f64a1661800b735fc287525310b83",
    "51add690c263f10c64203ce047c6a2160bfe3b3f", "1a013fb9998834a114c72280435d168c0fefe457",
    "b66b7c99086bfcb059bcea1f387c9c66600bc73d", "4f8d85e757b4c13aeafb6acadb23603141504551",
    "78520f78bace59dfef2570ab63730fe49d79bd19", "0c3f2f0f3ac6c72b556c153edcdc95180be684c4",
    "73f11c131e7cb0e63a7692c10b07b156173f23a2", "6bcf5ac573b7dc8764f1c9ae9563b1a67dca2674",
    "c3e655c5e556479d11d4564f8973b0a867cd960e", "d977395f619aef52fb4719a4511186c8e83ac727",
    "d097bc451e33f0891b434c5e07932e90f4222a43", "71ed1e488a18ada6fb232fa9c9a4208555851d5b",
    "8d4654faab25f973be6bb7527a432a91bcab26da", "2fc8769a3fc4c71dce38acf22400c331dd47c508",
    "8cb3eb91c1fe10919f3093e66a0522b18a86b244", "634567c52f32999aa6f7c26989068014cb652381",
    "e1a63b3b1dcbc8716f082a67518ae211755f8301", "b0dc33fbf122f47b12047d42dbb5c98a6acd3578",
    "2d57159e25e3d201989b9696e4054bd3e7a86cd5", "9fb333d66709c6081d3e9dc57a5aa45984049f3f",
    "ba7dfd5062e35ed9137bbde0b01c3b3ef8071b7c", "899ea76d6c87e77f29c5fde76671466fc62c59e4",
    "f4235667c51401704faf0160b1162a18e0607227", "826ca4577c16d5b6648e913855e90950f20d29cf",
    "3507e7589137db310ca2745a44d6c82b0baf04aa", "4efde766610a3902115e826b00c95ca41d4f13ff",
    "c8fab94e9d5188e4fc18130386301e965242543d", "2fc71a58545d90e13345bd6e292033e8a882eb48",
    "1722d0f50d6cdff2fc4ce2aee0345b4d7ccf5f46", "d93b1abf358951afe289e4b180f824da5366e710",
    "7a59bff80a06e0db5d3e23151a81b24d7f6ee7e6", "49bc28155adc139bcaf460720504cb49213b74e4",
    "14c218ae4a3d22bc0e59aa010d355a1ceaecb191", "96712623ea06e9cd86e3dc0f12212f8c0a82aff6",
    "aa89106002babc798a2aad5646e0802969364a03", "f67ed4e9c0e8cc6bf63098f7f7ca861bed17ac2b",
    "94576470412b8daa2eb68ff1036c6cd55fcace95", "1c997c4e6013193fdc8acd89986d05278bf39c9f",
    "004c0d6233f2a772594c5b641a153e1cca0139e9", "f223d32a2821747cda0c953869fd4e80cca94476",
    "a4e4673ac7e9635f02f2290c408782276f2b74f3", "1bf5b2b6c7804748764b640a4f8752ca36bbf6bf",
    "ce270d8d77cf8f65a461d0ad9971a34b1def6cc6", "d484725d4303edb434c67458eefd638892b3f7f9",
    "ff53781b71b32731d4c501fe622591b2fc919da9", "5cda88d275ff93289015b6d31f5cacdfb2ecf6ba",
    "7acf5858e43ba3ff7ee469a10c3c42bb4d4535b5", "a2659af75500214170228bc208373a7fa71187db",
    "03876d2bfc87786e413d3db303deb59e5eb0e44a", "cc2db95e81ddadc0da1832c505d12f06b2a81582",
    "5731b9605b5eb5f90ac0426fc9054894c43b11b8", "a26e050436be985ca2012b7fb76d982b88925ee5",
    "a2154b66f939e5a99f6d8ef397f73a991e3f7e03", "2ea257b57b7b0d304800045c4b2cf5a73c8b0ae9",
    "948d8bc9c3e1cf1c933e37940208a1404e037501", "db8396a7af7f8732d6f63f59208a148515bb159c",
    "ade3042b7823dbe12f10b75460d5a561afd61c71", "e3b3d5c2503a8720fe10a2ee63ccc2168d4c3960",
    "c05bf6ddab7f7d6479c21d995083bbad0b8d0dd5", "23f98c3944dc5639c135eeac7291c5d7229acce9",
    "cdc2001127d17ed604bc93090027d962076d078e", "c996b263281b012ee408e93d45f762256995d188",
    "6e82a4da19d2409e52668e638ea0286ffa9123d9", "e8458398b8f69b3e1852fa44682a1d0020307ea2",
    "9fbcfa0f6b91f0fc4c1cd78821e18023dd795398", "8fb69bab0c86f81aa399a13c16c875ac84fab3a8",
    "43ddfef02e0d0cba6670231f6429478bda6bead9", "fb4be0cd5c9fe955310c3dbcb0018d5a1eb3f57b",
    "d5a4c5ba47c7e0084d3a7a006d223e44a8888e22", "e6a46c22c582ad1505d2736b3f0d88d351b17e62",
    "a2f382340d8b84ddfe70755a99ebd9659797d3dd", "01bb372ec2990eec352b5685313a8a19aa6d25e8",
    "e0f9e1309aa65e811c5e04786637472cc5b8db2b", "faf949ac79c7797b631b35f51a2e3c9bcd07d7ba",
    "803d1f5b4d5ee970d8a789c1fd0097a23c68fbc0", "d4c5a4250d1d024081a2b5871bf5ae9e690e855e",
    "8999330a2e7db5994d9bd43ccc01c5d31f30db4c", "ac3f39b610b93551ca41ad686657a0e3c2ec082d",
    "cc38adae47396d689335f1b3465157365df3603a", "239e932ac4f2b14e524140709e4ae8204e83dd22",
    "6c3a8bdf65af2ba2f3dd04934c9a8958088633f9", "2a0129d118a1b7ac12943a7b24cca2924a2d1fcc",
    "f1a7583b6cabc60ec78bd805661a41396f253f4f", "8bc4a7c37284135fbd3be2f48b80271bf2bc23ec",
    "4ea5e95f7f37aa176ac84bbfe49535949305ee32", "b3fe94fd468a7d771bc78676a5787cd55fcfd459",
    "18892f8bd66e4c42698ed429ebec6c084248192a", "705cc0ac879e4ba75a7279cdc3579d0268c887d4",
    "dc72a42b937dbfc16d0b3036cafda1b730015d94", "d37708c20601bba7bba9ba4b42292c660c8a4a9a",
    "c54747d3df4a9d209cbdc0901fe018126ade7106", "049979b8070884415e63a0b484e45f10d370f0b9",
    "e8a0aeb07f179056d4d548d14786e8dd008e0054", "1a3da5d61507ed9f13a34a148ac3ee15ef2566a0",
    "951fc963aa759e3d3d04c5f3f6f7853035f435f1", "c23ff0a4da588554dc2f77de333e59ff3d78dfc8",
    "ffdf910036ef1517ccd5e3ef754ac676bbd95722", "97e41ce366e2e0be5e0e839f0a33bf0b647a9b02",
    "f47b9fb6f78e02ae6095cb68a90b207d48f0ce8a", "a942167fb27f8322985b4a499569995f4e434fd3",
    "6906fcecd61bf5317f19f8fb13602e3361b9bd57", "bd68c683be86b5a87a78c1387470e85b1301be0a",
    "f47cee0c84f0f33b221244fd35dfb7605715373e", "8aec39954938bf6253cf65927542e1018e4b53e7",
    "04e6fb9a58832afb30aaa51a8e30ee17316de414", "5ff1742a59d64e98caddcfbd590af5ade436b76f",
    "34b70c384d153254e9c889b0dcd455026e0eae52", "2931e9830c2ec14f512d302d35fed5c4ec157f39",
    "9c15ef758b668501c57734c21523cf180b49b44f", "185c7ac71a9ca00755d9df60cded2f4b19555e38",
    "ba64d2d6cb71a003d18b41c560725d5ceddbb71d", "ed31e9f2976bb919fce07a4e7db6051bb90711e9",
    "947f065ae440d3b4d479a77442e8841b94f9a22d", "e6f246cf931fda6987bd840cf4c98fe93b950714",
    "40cc7a2377d10e468a6d8200fd964879ee0861a4", "b7289aec0df380e8aa4b06d2a422e305f4d000fe",
    "03e8df94217be8083c71990e427b07d6408e0a41", "10c253253292f824582349a312cc568ec100e9bb",
    "17ee7766575e7e0007d779be36008a6ea2e50dcf", "0ef4ca7fe5ffe1ea93b58807c56bb5f8e90c67a0",
    "7b0f3ae80649c91ed8f52b607df7e2a53bfaba96", "50a6f95173b0a1d61196f3225f258ca9cf1469d2",
    "077c71327f32b0a132e9c95da534c26c0b11b1f1", "d6c76eb7d133140fa4fee56639f0786affd50074",
    "87165d96bab2343cfe1a8c426a54b0851ca1f16a", "4535c48722e5e60d635a71ba70f4caa7d0602aa7",
    "2a8c681731672d5c53364e883989f2eabd9c3e21", "6c79e16df0fa52f4571d0f3cfa450d4b17b5af51",
    "24c7f965d54bd79ae2e7e968e69d27ecd15a94cb", "a37757690d794255191853ae60b4423c75589515",
    "f4e2d8e0fbe2d9be8271c021e361473d6980342e", "2afd0e566bd0117f79108a1e277bda514c8820ad",
    "329a5c1baaea03c5710d903aadb2cea7d0f6fc17", "90cd578f2cd6882cbbac557a9f235687b256c357",
    "492453579c76f2c4a177735fe97b13bfe45def1c", "9283d65c37ed5b73106170d8ac02982d2165b73d",
    "758292cc9249d38ae897f18cdd27df042aec3aa4", "1795f0f112100e1c2623918dd198bc86f77a2d79",
    "6ec01498b462fdc57416ca48641e69a4c0eae0ae", "4279d131ce51bc1c0ead7e33a254d85b0fd3de77",
    "af3459537acbf69b5eec980dca053c17cfff2656", "e291c3d9eb16dab6f853264b827d28f194b1a1a4",
    "eb98f94f680c7253535c022e79b618a0b79c1428", "e2cb9299dfb641bd6396f97937e71811fd584732",
    "049e4d4355417cf9eb15d6ee5bc8f98f6c59cd77", "d0577c3f293d0d67f1d82aa9499ca58dcdbd04d5",
    "914a7ca6cfba2f6b6c79af9a4022e8dc831d640a", "c69cfb58f2272efe33da55392dc111efe98e6d31",
    "effde969c49281100396abe2dd7479c536464183", "ef33f6c4b4a0e459dc34ce7a3fddbc6c5eb10531",
    "3df16e48eaa2991a73af54f1300b0131fb4068af", "ae3e0d97d878033be189976e6e0c2e4165573237",
    "7d6c1db7c0e883d8dddcbe464f43dbfbb37b71fd", "0e45af1ebddea40142726daec25de6ad191f41f1",
    "0802355f4c9cd0c7685d48dd7078c1f4e3557f21", "967f2be2007eb2d4266c6d3de3524fa70e4c5080",
    "98346d168960131449968b220f1dcfaed291989a", "eaa6024f8ac738d4919035817cb36ea08e753e82",
    "2430dbbff76539aa42db64d478eee8eb6e4765cb", "523312c28181308a17c57774b6788d99b932bfe3",
    "174adc533974132216576d514897d13219ac8050", "733302e5eee6ca9dc8845aa0c1e03e6862b1c8bb",
    "f5580d62ea099fb41064496514a7ad19bf2f4838", "137f68591acaed0535f68321fd052db855c9b86e",
    "2fc1530cfc5fe63fa20e96a5172d804c7ab82c0e", "29939eb4ec148575875034e01fb1d1b203a68c06",
    "64bb6ecad77b87b3308b19f9956f72e9bacd9a16", "9c857cde9113894a424944b9b2c2e872b5d515ce",
    "453d31f7f6bfdbbd670f383df6a8f3894482a94b", "a0cbfe5355a7080320eeee2893bad92cd3dc4232",
    "238632e995272ba1b5a08ab1509c41be5c74e8d1", "6a72a46a6fbf5d6dd7f9bd328eb0f7f1948152ad",
    "9bb764d6b77a7a7f65e02db2e6ab36e482126c85", "ec1ca7c72245b9b771df4f2efd2aa151f2990642",
    "0d989a66e6be297eebc021ae6c76611e9f2a9cc2", "24c95d18a683e1f4cf743c849413342e1eb040d8",
    "2165066573870855fe2e79e5bbfdf8d3ecade37b", "02342fa20f8bef3cf1c5305951eedfa7e47d46a8",
    "efecd081583c3d6705a59e8cb6a4c46de24331a2", "1503280956490d4b89e18a5e86cda242993c7a03",
    "acc2e98cecc7d97d6d320eab4cb64c7bbb4e4436", "db2102e33a49976bd5996de03441797286d09eaf",
    "bdaacf8f82bf6940b158364f48101b4ce7066fe4", "bd834d70e890c3c77f275f799911b3cd7c5fd7e2",
    "5226efcec2c9809bbd4e422a1a0e940306246169",
};

constexpr const char* kSha256ByLength[201] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "9d1e0e2d9459d06523ad13e28a4093c2316baafe7aec5b25f30eba2e113599c4",
    "ac4150fe5c10c52db000a2b5c8ec38a06b5f3066bb861429caeea8dd0192a1d9",
    "13c425a746ac9e72be4760dd13b156260d7ad6ea6b8750fbf1c7b0d5a484b852",
    "3ca50c11609595b64693be32e58b46eb35c81dbce77fef6162e9b675e54c7619",
    "0b2efc8144bb0d825a1d8afae908d957ee1cb1a9a933c55a1e121a3d33c33ac8",
    "39ecf6ce33e1f50d1fed7ba6dc6fdb074ab1e0362518cb884a668459e853bbde",
    "c203a078ad61ea701fe3b59157795377099530c374bca00d8515198b64e75dff",
    "f0c621cb705bcc7b4c6b940d4aee13a481804f6ff20640635a33a7dc613f8111",
    "d7d49018f6f0dafcb068f12e57f8dd48a036e83c06553ded4f99e65ade28e6e4",
    "11e88db1776db4313e63084759d44e258f05df254f515284beb2ae54530b1c76",
    "a637bab7c64f733fbe04214b1db659eba54432145e4f50ffe32ce4c61b88c812",
    "41f24dd1b6bba8a99eead9baecb2fbfcb2c1212e206512ee30c4379b1677ba54",
    "632debdecc64eea9a591d4b80f3ba0eeaac4561a134ff2cacc1f21fbff3accce",
    "aab4ab03aec228ce956365e7ebf30ee1c9beb56830c676fd5a50d2743e1946d6",
    "4da00c498b517755271cea35ec91c68544180ae1b4b91be33eaa4719721d71b1",
    "ce141eff2bce3c665db6c8cf602246015a6786ba707d61430d3b1cf43ee9e824",
    "3c8c595a75bc2ec015abec1c214614e773195b21a8fdcc46603588f5d59414dd",
    "38bbd99118257174a3f29328f8fb0834a262533cc6d27a5f11a2de21e581a128",
    "cc0ee2549211b6ee88a76d03cc97bd62afccda188c33569f98b396da070b033a",
    "5593f50c3c902a4dbb934960e027758769dd4991ed68c8c5a0d9ce77334d1704",
    "e447b286f8484f85f19ac5b904b911b9f9c645da6046fc37b79fd27a3df4102a",
    "83a91f7f5a6f097539301377812089cb4d61233adbf92761df3a3ea1f7dbc7ca",
    "0e9ccc7de0cc29a44de4ca37a7be4eae55e1dc03e9d59c1a946cba9519f4d4c2",
    "ee174dce0285a780d55862217b5dbe78a32f155a635b8e306f2888463f2c7122",
    "f38e6cf0e6c93b00b0d2efbee8cc5e012a24b5393c93b28aeb41fe026ef9ef6e",
    "1d7ab78ba63d8348dbadb2cceabbda047a16ee3563df520b385f3fb8ff36a22b",
    "1ab69f9d5f1b275ecdf4dcbd97d665fc91b77b1d65c724b99899b70384e2a635",
    "86447568d1bd278d5f7df52ff0a9539e974e83427b3c35f59b9caea583594074",
    "410e485041e4b9216645fe1bd729c0ddec650f4689879c2ab9c084ddb87f822a",
    "cbf2ac637e659072e0af3d58386345fe1263378ebbd706058b78f7c14b4efc31",
    "e0f1595aeb4ed77b4c5f5c85c81096fa428fca936041d094a0cc2bbada7b9ba9",
    "a0005a1a507e6d6488e4d36992e99f7c693e5c1b68018f8488149346a4a06b23",
    "f456e3e94bd025e42cf609cab6be7081fea007870beb80fe3433c2236ce8a511",
    "89dbffe8618914e059fbec6b2dac81aa9921beac0aa8c61620fe3819171277b1",
    "601456984104fd2b95f368c97a4936fd62ce3638f94116f9013909ab890b11b7",
    "f123e3c628c9e8f2b32cc9a61fcbbedeaed30760f3b13ea02db90fe213f3758b",
    "052bf9f3fbbd7f7def7a3149e946e368288a08951f98df4f50d60d9918b3c277",
    "94060274052bf8abfdc0fe7c27ddf0d5ec940c9e96ed2af9d788e4306caf1917",
    "2108937055f8c731588754324a99f0456a848eb67727637343615c2fcad8ed5f",
    "0c8cd99317c4d88f28731be79805326d5329ecd70ce8cae25ca5496cd890d072",
    "8657f654dacb4974fc9d6177db6c34e9c960f0218594fbda22b7c04664a31786",
    "f08e4c43738ffd5a4a8db2864f2b66f8bd622a6fe6b1b4bcfe492c8d63312dcd",
    "1cb366de1b211835491747c83902fee8b672e3fc38c72c40cba94acf88c0a0ac",
    "6ebba9acc1d3690781c9e6ffd8b7693e7cf72205abe64a5bf45734cbbcf34433",
    "943b0f14ab70d50d5679e23731b42d53c17e9aeb3fae8cda13e01b9052855adb",
    "28edfb4668ab45aa6bc8a2f970fbe675b6f1c3164aa8bd514d486ad85cd91953",
    "1a74f440e56873d224eb8ff11b32b97f8b94448e91c3b2b3f36d21f75ad440c6",
    "3a1f1b38b18f2bccf02f7a11efca31133a35a3ddade893968bc0ba63f7267912",
    "66de5aab0108bf5a809e4c8689d0aeb2a9e37fe4b7acaaa579237d156d4ee4ef",
    "4c55db8015b7e54ff597723794182657d374ab4a0bdd2ea9fced3a37ba54effc",
    "1a6bd48e3c37aff32bbb222c15e5db94a6c12794c61316a529d34b1f6c6c87a2",
    "2afd2a622fe475e29665996b53d8b237b080917b57eabfe6c03c8cb6a5fb2571",
    "b5c404c4e96dcc358bc190e6478ba4b0cb9a218a6852ec59e9337d603789d0e2",
    "5d17705b7f0df5e22eddad8bcefe52e95a9d1006bfae79e828c3c1329d0217ea",
    "b2ca0adc388a66d3a5a7f6541239331d5a867eede554e11262241271faaf36c5",
    "3768eff44f1df02704a832cf708935fbed9bb74d0714fbe75454c266c4e12856",
    "a35b6298adfbc5ec16dc51a8d52145daa2a68f1d66e837d85bed6783d874c5cb",
    "e0f4469743052c88f3077afc03c639fa9a953d8fa6d73afbdd355b9bab908aa8",
    "5f7a47400ea5e41bd7c31682cd717ff82e5024bbb1350553d1f0f22e40b8dc45",
    "f867cac02787eef84fbc9e705a1c5ad99532170fc2006309e3904838f814f33d",
    "66ca6894dac197b079fdf27dd6d53429720254a01a165c914595fb1cd2bec12a",
    "0d3b08f701d8231d3809662ee50118ebd0c6591a6578bf660e02decf7bf93c52",
    "dc06ea9e456da9f9fc2276564018231c36196ff7745bf505fd7f503aec5c67fd",
    "b68fe543b0b5a544e32eb08712e697bfcd3a3cb491563c3b1cba112d378f4bdb",
    "587cdb9ad9be371721f2f84a84eb09f2b698ec19bbe2d7c222179996547a04a6",
    "df8c880195744c9379ddc11b6a7862469de5913621c2f4231ce208a7685ffb22",
    "c24eda61aa3d598e084a47920c97dddae00d5315ac86f7f466a3f7fd9a6a77c0",
    "d4530dae4bbb58fe1a455503b20d1b774de4235a67a5e7367fe7e78bb960c242",
    "66166998f76d81c8eded72e93ffe937b12023eb5fe5b1c984f8da418ecfc3a38",
    "88ca792ead0e03d0e594f96716cdf09eb36a10f7880c93ba878e32142896daf3",
    "7df0a7cab65c44c253f1b47596cf0b255b780d3f309e5d74f7e851eb49e2810e",
    "e66e9c2d98c5b4407b89687d74ad4878f789c753548c3403237f786fc117e583",
    "2afc27ea6df12b6b7f717d257cd65a1a3381e546d9694aaa98abfce2b029cf84",
    "306fbbd71fb0d6c7a5a1bf9f9ed245c88d94b7253797c18f3dfbf744dd6036cf",
    "bdc304eef30db25723fa15e7d600214143d2075b25eef8b7b6863841277141e4",
    "e22a2503dde5a329f6840ab9cd6a1daf8b181b0798368f0a756eac0e4ab50ae6",
    "dc4c20b498847eee6e7735981e4ad9585856d089b8030e9cb87339110990d08a",
    "15bc2000b78806bcfeacafa34c9a617e17f8dd85d5b99917d49a8d02ca9b03c2",
    "5c41256678a6d3d0dbd72b7ab4158b69915bfaf9a330700a352946fd87ef5efc",
    "97a27d9afdd01a62d2991ceb24e5b7e0f7edf6a31b9b34b75cb24cacec43515d",
    "22f7ee5eb0f6305f5266552dd8381bc25694b79d1f8c622127dbf81e9d59ba2d",
    "3c4c6fe194f4062d9c6b3493d4927b022dd43f23541fda8c2d986e59d4680b05",
    "9a942915ca10718333b6b0ad0a4e3c8417498bae7362101e09db15cacd9ef311",
    "1ff21fe7a5d5da9e4843392e6c96ee36f9ddb6c236b7e06e313ebe9e4dd9c2ae",
    "05dac20a2256458df82332da1a275ee80ed2a8128775a57e6fd0ffd143ce67f2",
    "1ac0a62e0c7175af56160d6392380e9c0c75c2b58c7835eaa7d45b7a4b2941f7",
    "cf1220656f4d51ceb0a0502269606461fd7fe17817ee7562c395ba2e1b07e8fb",
    "10c296217362b5fe1604277f178f2c426a56ab0629059c499ffc788df9ef6914",
    "8385a09e2aec27c47c64fdeadb08e4332e3584de26ae68262b828776f41748fa",
    "a90b76932b2f068503c284088ed83654cdef6051393cfa86d89d764e2f2580c7",
    "8ed0c4f28e1ea7c20d9175afc572ef07ec2e579c52032d76e3a13e8d5f5d6cbb",
    "49e43de8ceac8456b21151c126985ef649d652b378eb7adde52bf4bf714f5365",
    "bc86ffb3a9f146650a47c0a21bac10ef5d234a4207151cb06e403c176b91caf4",
    "a4fd5b9bb2b9dc8a264b01c202ff3793542a4a30e47fa0f2d21bd27b0f3d4473",
    "7af12630cc450bb78da210f22014963796e4e8c36d2c310ad48c4026e3cb1a2c",
    "b0335ebe89f2fc1153db3ee9f7f0933069b3e853504d533f0a0ae8a7077c3bda",
    "dc91b1495c1fea4c3456fa0aadd00e023204dd4cc7a4b4bb115f95674b197005",
    "77829eec2e7760fbbb651cdf80715fdf20974b53c5237eaa3f7f9224427a3ac0",
    "5555a14049267647d9680e36e709e46c82b4bc77e842d646cd18243b60987382",
    "2f3e74f3aeb89ea613e396f9abf2a24358df1b06fb85fc84ad02c0ceb4a6dd2a",
    "855deb0088e503888277a3067aaa97c5f4c287d9dc2690a04e0d2a69bf344a87",
    "6cb8ecc77381d5240a8318d686b1be92e2f5d2e70d2aaf725c63b0b87a250005",
    "75f00ac38edbe5294d9166e9c42d74286f9dfc76d693d0d76d908e467af8485c",
    "1a0a7ccea655f86e7c7a5760ef621dd0c6454cc78410a56495afe11cdce96c8b",
    "2245bc2bfb0b81933efd27d3f557790d50451ef66ed8310945b5eb8c3d92d8d4",
    "dcec5cf53285bb043c554c7ea953598d283c910c341fc94eda02c2e1e8e86148",
    "d6802fb9c8cc51c8e0d57251be034de02dc32682fae08bb3c9a89d1feb4d44bd",
    "94112edd6f624adf96103ea6529491e37e2926aeb38547892edd40a2d90e3df2",
    "1424da7dfea68825cc71cf182fc6d2181992f9e3708ad01719b0e27784d2a6ee",
    "785b209cce10bf4785e84ea8533cf065f755ccab39556d24ef7e5d7df67d9495",
    "9905ec11d55cf034f183156b0e03736c10f3374050b17a3c76b50cca3b9be4d0",
    "a11fc5c7ba41fca737a1664f29faebe1dc677f44ae1a4147bad8804d9c981d30",
    "3e37bc2fb8bac1683a55a67eb991deedd8a11dac4826e0cd11ab58a250ad17c6",
    "39995a4b080b621ecc0fa20a68cf53e1ae14558896644264f8a082afb92535a3",
    "c6ef546e12ee56b98c743b3a228c5cb1bfc3f94394e083eecbe94a2a58e5b376",
    "8441248d8a096d5afe5ec1734afc22fe52094b3c3256659c6021bddbe5e584e7",
    "b6cd4e49bf4c95cc921a65b1cbaa1cdc7a82f53ff8dc44630d1d6dc1c3008517",
    "f07f917c111c514e7c082853e2b630918747904429673d18bf35c8d5984c012c",
    "b27b61037be684924f5497ee79c784f09c971d8c8c3136f6270e0fd34775aa1b",
    "00c666e960132985e9c99dc98bf25782df791138d0f1252b69781694ed97d693",
    "59b4904558092282298915cc266fc57bd7fa697c191f4f04b8329dc7d5caf1b5",
    "f2abd38f0e4032ee6a04777e9314d5fbbcfac7a30acc8afc2860e51c31e18493",
    "9cc73b603f9d303472e23daf581ca3e6b5ec71f01e0199bb089f461cdcb01549",
    "72ac56220abce5c4866ec53ae906d5a2dd3dd4a2715c3c59bf71d705d8a77abf",
    "36d435c4eaa9dfa16ee559201735ec017e76ada7d43ef3c789049378444e26d9",
    "690797a85a4ca196af204046919b6f7d5df96b85d28130fb9ee357a24f311f24",
    "805f2702e76ff5d578052c965ded05a689d9293fd86c5584b0db399d33e9745c",
    "cd77acfc16d0964a4c3ef06f0678a5c88d2d610de00f7b997676fea5b4d2ae9e",
    "2c0b373b4a62770395098399a7d08ca18fce440e3b6c35a22e5910eaf515b72c",
    "a8d188692c31c397b7ae11eaa7f0dc6e29d163237d550ed06048ae82a2017f1a",
    "d31ddae47dcd2029c9d590043edcb86d5c5b8b5ead0d8fd105410d542bc2245c",
    "869e6b98103feedd0c18975d70ff79e02b18fb500655de8ac4b8c86429234ed3",
    "6168465fcf5a1ba9062d951d7931ad1f3130ff2f6352935a3c6a5c3b9b4283dd",
    "952159b19c3defd1f3b25a33f9321c0ca580aed36439aaf73bb6e261fb41260a",
    "c0809a85e23292a977eef4d1abcc1fbfcf9c7f12bf79a52663efee20e89f6f98",
    "90ae102c9a590d30c26a2305d2a579fb0057230a26320dba4f65dfd75b58ad9e",
    "84f1fe53d2ba24c112983a96d9c6f2c3fa5acf871bd69d2afd7786d611097132",
    "9a90e386c83915c66e50efae09ac6033534b8747a104f6549b6307de672d00fe",
    "c5b2584e1562a46c9c9c1b8d3e8fd8a3ad84a1687e9dc01a93e51fd3f2be9dce",
    "bb0ab6cac60489fde61a6bab7ffa4b8f1b9d11d8827dd35eacdfef81c7461456",
    "316db4fb6ba442421255da363883edea631130f181c14b6e3e67d5efc8f162d3",
    "979ffe53dc1a97ad0a09bd49f0d8d776508d91caf3096ddf25062ddceb75778d",
    "0b6da0f62183292321ce1e5ff575be60cdd80eded659731209ecb4e5e7592972",
    "060f264c94dce30fb46094295fcb9541c9d20d6274fdac725548498bcd071e3a",
    "e9489d80fcdc14121b09e0b4341302e213d5c90010fa25828ba031286f2649d0",
    "6e240128b8138c5d6a1c2ca5dda43a2dfc53e4f78009b7942a3a90876d3b70ff",
    "3e1364726ecf0cc45c06edf2fea52c3219a164d5ffa149f1cc77c76aaf7b7fe6",
    "47399de5c9b42af03f279a8edddce361534b151257aa692c4ee357d2ac0df1fb",
    "69c46cbc1bce22963785a3c1572c68152cbc5b10bec4b66d13b7e8c32b727821",
    "52d4bb3accd485d7f648f6a7424f0c64c7950496d601cccd97f1d7ce0d22d9b4",
    "5b98da8366c2a171d7cfa481d6fe6dcc11cce8c28e2ab87cd7a74b596da7327c",
    "065e5ac639b1728013206c103aed0cd3a66f2306df209ac26ebe8f75ed756b2d",
    "02b5ff6fca392fe92f30613444ee8b065f6706344c8daeb11b61506ba1ca09d1",
    "b93ef73d8c7a1a707e54563cbda4002f16b09a38349f4563c12670dbd28fa246",
    "2301ad1e05a9ed3279358670298dec6fdb3e4fe7945c8aa00026f4f8d200d529",
    "e7ee62432eb4bc55521221dd0e12c6bad74ab6cd804df7cc41354f796f0bb917",
    "316f20d0333f8ab13c2901d1b66bdd72670951bb3d2bdedda175af7cb60a8f3e",
    "3b1f7bce784c4800ebddfb8c271756e1d69c4ccf80845256c328c69c0e1cdc22",
    "453640a5fd7040af2886c58d60b11a3ec3789562905ad53bb2c30d3ae4292da9",
    "71674382b6652ed39fee8963c5831a5c4f3dc2602ee4b39034cc2e9d02db388e",
    "a3620e4edc0b5cd9fb11e0fa305739b8c6a76d07fe58f09243ffa47250c2234e",
    "5537a4237b7790336f2023354212ed98f2d64f56fa38d6c309a25709827fc3f9",
    "ba76d3ba3edb066c6f4b4a5c0f398d29892ff14bcee7f658e70a7f13a9f0ac7c",
    "86cd95d0eae3b5891b9f47069fe0aa75a710e5cccc0c3baf192e6ce2851d341a",
    "a116e1324ac686dfc31679e05b00b50ad8c11774d4093df5f5ce251e0ea20fab",
    "314d01fab8d3f9319db13d6be126f99d6a9bec150711266a225a65ab0464aaa4",
    "50de94b22d131db72a0d2ce17c45c533d681e9cbb1301cad77c64307fddd02d6",
    "8d39d85637dd0efb6081853c1e79d6fb529a7302f5b630e3e5179a98652ad849",
    "06d9beaa985777f78582088bb7c6d9563d7368b3743365052465b8e62b1fc7c8",
    "f7a5b556945006235fd104fddc2db61b64cc4c095dd812001a8aa7d35cd10b66",
    "5479146e26b741b1c08ee25b4710b6089cf2b1f0236805fb571af600e5416054",
    "d793ca94e5e4d52b5c41a47b5a89a2dba628ce1aed4ceda78239c953ab091770",
    "22fad9a89df993704eb84b0037c1b0eb94350d4b769c5b9d0dbdecbbfee1d8e9",
    "bc0c3b29b2ed26a43f3eaf1362d50259fbe43b8a7664205d8f5745b80faa3c0d",
    "0371584182115b5fb9e4cee6a7a712d6a35d31ad698f5bbcff0fe2513ff1337e",
    "6f3d424ab5761d989b1af0f3a615387eb06517d9b717ca0ce3aeaf6ccc934a32",
    "29d78841b7277b32e0a661fde23f0ac481cf6fba3dca61581153e7d889e429d7",
    "cd47ac0536afd5449d3278fe50419d5e76d235253c004e25b84602ead7a64e98",
    "d597109991cb1814534444041efc69168b69b77bab88f0f1e1efe7d2ae134b42",
    "9359cc28c446683db587b895f41c084e2b0490a0e110dbb5a8b7bd663278d433",
    "7522d4f1905ab7ae6a146f83d8d07105785fb58440a65417ce4fa31b1d9d51a4",
    "c6f1c9c3bc866ef5c1f643fd078a3c7f5650480006db0af85d2ef0b16dd584e7",
    "1e165834354a190330fb5baa34e168f410dc50d01f2eb5c3c80312f4429eb5b0",
    "f054efc98aaae568493d8124c94e3b7df69cc214ed5b5e6dc7d095e457bb242c",
    "19b4922127725342ea1950985f4d64b8b9dc53013f2d3b665d3ac33e254f23c8",
    "fb5229a683d4f03fcc06ed0d45a295ad773a0801cb05aa9367925f5959ae56db",
    "2629edf3c140070900c20a99025b4613e9b70bf06ec0bcf5e622bbf0077dc049",
    "4bef9ef3a9bde9b5a5ea19dd506beb248a330c4267aaae865016d230ba637649",
    "27ff56d1f9106ae4b993f55e7ae2bfb19d386accf56fb0f0470dc1bc4acfd57e",
    "33c98ee9e2ca15d929c03c0db554d1bb49790a7114d9a16d6646b587eea34ac9",
    "e694a75f8ac4566a8e3a1c5384c2cbeab71ebe968eb1e3abdf5faf66dda46c1a",
    "b0b588dd61e7e39c3d238835f9e0c57ff52dfb0188060de13e4d45a65e919426",
    "ccd558797631efbf03a9ba77f7e7ff5924d2982a4dbb34d5f1817b0969f68306",
    "482de5bb2fb3de3436603b73424fa4f1b3b186f41ae1bcd7e7f58e6b0ea44813",
    "afff0d87fadb0e0ca414255f3dad242b0418d8b9c6bc19aaed3b6589a2b4130f",
    "106efb96e1188ba833f0e5f4d91825e36c5306de7c09002a6614eac283146db3",
    "9b7fc01c284f692f3cac337a3ba9032d9c22b5b0744f633fef6ce4724b834d30",
    "c90b2cc5c216ecee1240ac5c108ce81fe492e4445bcab7c13c7bf99b5a9b06fc",
    "51f6cd88379f85d0d7d4086e71608e1d14242066ded574a4b7dd5d002a1aa7b4",
    "db057a75ef112511a720d3e712bc7299cc1a3037fc53cd8fe11197fc6df0c6dc",
};

const std::array<std::pair<const Algorithm*, const char* const*>, 3> kByLength = {
    {{&kMd5, kMd5ByLength}, {&kSha1, kSha1ByLength}, {&kSha256, kSha256ByLength}}};

// Every path the CPU has: none, SHA extensions only, then each vector width with them.
std::vector<ts::detail::HashPaths> available_paths() {
  const ts::detail::HashPaths cpu = ts::detail::cpu_hash_paths();
  std::vector<ts::detail::HashPaths> paths = {{false, 0}};
  if (cpu.sha) paths.push_back({true, 0});
  for (int simd = 1; simd <= cpu.simd; ++simd) paths.push_back({cpu.sha, simd});
  return paths;
}

std::string path_name(const testing::TestParamInfo<int>& info) {
  const ts::detail::HashPaths p = available_paths()[static_cast<size_t>(info.param)];
  return std::string(p.sha ? "Sha" : "NoSha") + "Simd" + std::to_string(p.simd);
}

// Each test runs once per path (the parameter indexes available_paths()).
class Digests : public testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_ = ts::detail::set_hash_paths(available_paths()[static_cast<size_t>(GetParam())]);
  }
  void TearDown() override { ts::detail::set_hash_paths(saved_); }

 private:
  ts::detail::HashPaths saved_;
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(DigestPaths, Digests,
                         testing::Range(0, static_cast<int>(available_paths().size())), path_name);

TEST_P(Digests, Md5Rfc1321TestSuite) {
  // RFC 1321 appendix A.5.
  EXPECT_EQ(hex_digest(kMd5, ""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(hex_digest(kMd5, "a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(hex_digest(kMd5, "abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(hex_digest(kMd5, "message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(hex_digest(kMd5, "abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(hex_digest(kMd5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "d174ab98d277d9f5a5611c2c9f419d9f");
  EXPECT_EQ(hex_digest(kMd5,
                       "1234567890123456789012345678901234567890123456789012345678901234567890"
                       "1234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST_P(Digests, Sha1Fips180Examples) {
  EXPECT_EQ(hex_digest(kSha1, "abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex_digest(kSha1, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(hex_digest(kSha1, std::string(1000000, 'a')),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_P(Digests, Sha256Fips180Examples) {
  EXPECT_EQ(hex_digest(kSha256, "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_digest(kSha256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex_digest(kSha256, std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Digests, OneMillionAInPartsOfOddSizes) {
  // 1,000,000 = 7 * 142,857 + 1: parts of 7 bytes cross every block boundary at a new offset.
  const std::string seven(7, 'a');
  std::vector<std::string_view> parts(142857, seven);
  parts.emplace_back("a");
  // MD5 has no published one-million-'a' value: this one is hashlib's.
  EXPECT_EQ(hex_digest(kMd5, parts), "7707d6ae4e027c70eea2a935c2296f21");
  EXPECT_EQ(hex_digest(kSha1, parts), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  EXPECT_EQ(hex_digest(kSha256, parts),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Digests, EveryLengthMatchesHashlib) {
  const std::string data = pattern(200);
  for (const auto& [algorithm, table] : kByLength) {
    for (size_t n = 0; n <= 200; ++n) {
      EXPECT_EQ(hex_digest(*algorithm, std::string_view(data).substr(0, n)), table[n])
          << algorithm->name << " of " << n << " bytes";
    }
  }
}

TEST_P(Digests, SplitAcrossPartsGivesTheSameDigest) {
  const std::string data = pattern(200);
  const std::string_view all(data);
  for (const auto& [algorithm, table] : kByLength) {
    for (size_t n = 0; n <= 200; ++n) {
      const std::string_view input = all.substr(0, n);
      // Two parts, split at every point (an empty first or last part included).
      for (size_t cut = 0; cut <= n; ++cut) {
        ASSERT_EQ(hex_digest(*algorithm, {input.substr(0, cut), input.substr(cut)}), table[n])
            << algorithm->name << " of " << n << " bytes cut at " << cut;
      }
      // Three parts cut at every pair of points within the first 70 bytes: a salt, a separator
      // and a unit id, with the boundaries before, at and after the 55/56/64-byte limits.
      for (size_t first = 0; first <= n && first <= 70; ++first) {
        for (size_t second = first; second <= n && second <= 70; ++second) {
          ASSERT_EQ(
              hex_digest(*algorithm, {input.substr(0, first), input.substr(first, second - first),
                                      input.substr(second)}),
              table[n])
              << algorithm->name << " of " << n << " bytes cut at " << first << " and " << second;
        }
      }
    }
  }
}

TEST_P(Digests, ManyRandomPartsGiveTheSameDigest) {
  const std::string data = pattern(200);
  const std::string_view all(data);
  std::mt19937 random(20261208);
  for (const auto& [algorithm, table] : kByLength) {
    for (int trial = 0; trial < 2000; ++trial) {
      const size_t n = random() % 201;
      std::vector<std::string_view> parts;
      size_t at = 0;
      while (at < n || random() % 4 == 0) {
        const size_t take = std::min<size_t>(random() % 80, n - at);
        parts.push_back(all.substr(at, take));
        at += take;
      }
      ASSERT_EQ(hex_digest(*algorithm, parts), table[n])
          << algorithm->name << " of " << n << " bytes in " << parts.size() << " parts";
    }
  }
}

TEST_P(Digests, NoPartsIsTheEmptyMessage) {
  // The empty message, also from zero parts and from default string_views (null data).
  const std::string_view none[2] = {};
  for (const auto& [algorithm, table] : kByLength) {
    uint8_t from_nothing[32], from_empty[32];
    algorithm->digest(nullptr, 0, from_nothing);
    algorithm->digest(none, 2, from_empty);
    EXPECT_EQ(std::string(from_nothing, from_nothing + algorithm->size),
              std::string(from_empty, from_empty + algorithm->size));
    EXPECT_EQ(hex_digest(*algorithm, std::vector<std::string_view>{}), table[0]);
  }
}

TEST_P(Digests, ManyEqualsOneMessageByMessage) {
  // md5_many, sha1_many and sha256_many against md5, sha1 and sha256: blocks of up to 64
  // messages of mixed lengths (0..300: one to five blocks, the longest past the lanes' limit),
  // between prefixes and suffixes of several lengths.
  const std::string data = pattern(400);
  std::mt19937 random(8);
  for (int trial = 0; trial < 300; ++trial) {
    const std::string prefix = data.substr(random() % 100, random() % 3 == 0 ? 0 : random() % 70);
    const std::string suffix = data.substr(random() % 100, random() % 2 == 0 ? 0 : random() % 20);
    const size_t n = trial < 65 ? static_cast<size_t>(trial) : random() % 65;
    const size_t spread = trial % 4 == 0 ? 301 : 1 + random() % 40;  // mixed or similar lengths
    const size_t base = random() % (302 - spread);
    std::vector<const char*> pointers(n);
    std::vector<size_t> lengths(n);
    for (size_t i = 0; i < n; ++i) {
      lengths[i] = base + random() % spread;
      pointers[i] = lengths[i] == 0 && random() % 2 ? nullptr : data.data() + random() % 100;
    }
    using Many = void (*)(std::string_view, const char* const*, const size_t*, std::string_view,
                          size_t, uint8_t*);
    const std::pair<const Algorithm*, Many> kinds[] = {
        {&kMd5, ts::md5_many}, {&kSha1, ts::sha1_many}, {&kSha256, ts::sha256_many}};
    for (const auto& [algorithm, many_digests] : kinds) {
      const size_t size = algorithm->size;
      std::vector<uint8_t> many(size * n + 1, 0xA5);
      many_digests(prefix, pointers.data(), lengths.data(), suffix, n, many.data());
      ASSERT_EQ(many[size * n], 0xA5) << algorithm->name << " wrote past the last digest";
      for (size_t i = 0; i < n; ++i) {
        const std::vector<std::string_view> parts = {
            prefix, std::string_view(lengths[i] ? pointers[i] : "", lengths[i]), suffix};
        uint8_t one[32];
        algorithm->digest(parts.data(), parts.size(), one);
        ASSERT_EQ(std::string(one, one + size),
                  std::string(many.data() + size * i, many.data() + size * (i + 1)))
            << algorithm->name << " message " << i << " of " << n << " (" << lengths[i]
            << " bytes) in trial " << trial;
      }
    }
  }
}
