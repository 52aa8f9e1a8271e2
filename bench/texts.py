"""Fixed Vietnamese benchmark texts: about one sentence, one paragraph and three minutes of speech.

The texts contain no digits, abbreviations or symbols, so text normalisation leaves them (nearly) unchanged
and f5vi and upstream get the same characters. Their length in speech depends on the reference voice's
speaking rate (upstream's duration rule: reference frames per UTF-8 byte of the reference transcript, times
the bytes of the text, divided by ``speed``); with ``voices/vi_north_male`` at speed 0.9 they came to 4.1 s,
28.5 s and 167 s of generated audio (1, 3 and 14 chunks). The benchmark reports the duration actually
generated.
"""

from __future__ import annotations

SENTENCE = "Hôm nay trời Hà Nội trong xanh, gió nhẹ thổi qua hồ Gươm."

PARAGRAPH = (
    "Việt Nam là một quốc gia nằm ở phía đông bán đảo Đông Dương, có đường bờ biển dài và nhiều cảnh "
    "đẹp. Phía bắc là núi non hùng vĩ, ở giữa là dải đất miền Trung hẹp và dài, còn phía nam là đồng "
    "bằng sông Cửu Long màu mỡ. Người dân nơi đây cần cù, hiếu khách và luôn gìn giữ những phong tục "
    "tốt đẹp của ông cha, từ tết Nguyên Đán đến những lễ hội làng vui tươi suốt bốn mùa."
)

_LONG_PARTS = (
    "Ngày xửa ngày xưa, ở một làng nhỏ ven sông, có hai anh em sống cùng người mẹ già. Người anh chăm "
    "chỉ làm ruộng từ sáng sớm đến tối mịt, còn người em thì ham học, đêm nào cũng ngồi bên ngọn đèn "
    "dầu đọc sách.",
    "Mùa lũ năm ấy, nước sông dâng cao, cuốn trôi cả những bờ ruộng mà cả làng đã dày công đắp. Dân "
    "làng lo lắng, ai cũng sợ mùa màng thất bát, trẻ con sẽ phải chịu đói qua mùa đông lạnh giá.",
    "Người anh bàn với cả làng cùng nhau đắp lại con đê, mỗi nhà góp một ít tre, một ít đất. Người em "
    "thì lật giở những cuốn sách cũ, tìm cách dẫn nước từ sông vào các con mương nhỏ để nước không "
    "tràn vào nhà cửa.",
    "Suốt nhiều tuần liền, từ người già đến trẻ nhỏ đều ra đồng. Các bà các mẹ nấu cơm, các ông các "
    "chú gánh đất, còn lũ trẻ thì chạy đi chạy lại đưa nước uống cho mọi người.",
    "Khi con đê mới hoàn thành, cũng là lúc những cơn mưa cuối mùa đi qua. Nước rút dần, để lại trên "
    "cánh đồng một lớp phù sa màu nâu đỏ, mềm và thơm mùi đất mới.",
    "Mùa xuân đến, lúa lên xanh mướt khắp cánh đồng. Tiếng chim hót vang trên những lũy tre làng, và "
    "tiếng cười nói rộn ràng trong từng ngõ nhỏ. Người mẹ già nhìn hai con, mỉm cười mãn nguyện.",
    "Đến mùa gặt, cả làng lại cùng nhau ra đồng. Những bông lúa vàng óng trĩu hạt nghiêng mình trong "
    "nắng, tiếng liềm cắt lúa xào xạc hòa cùng tiếng hát hò của những cô gái trẻ.",
    "Tối hôm ấy, dân làng mở một bữa tiệc lớn ở sân đình. Có xôi gấc đỏ, có bánh chưng xanh, có canh "
    "cá nấu chua và những đĩa rau luộc còn bốc khói. Các cụ già kể chuyện ngày xưa, còn trẻ con thì "
    "chơi trò rồng rắn lên mây.",
    "Người em đứng lên nói với mọi người rằng sức mạnh của làng không nằm ở một người nào, mà nằm ở "
    "bàn tay của tất cả mọi người cùng làm việc. Ai nấy đều gật đầu, vỗ tay thật lâu.",
    "Từ đó về sau, mỗi khi mùa lũ đến, dân làng lại cùng nhau gia cố con đê và nạo vét những con "
    "mương. Cánh đồng năm nào cũng bội thu, và ngôi làng nhỏ ven sông trở nên trù phú, yên bình.",
    "Người anh trở thành trưởng làng, được mọi người tin yêu vì tính thật thà và chăm chỉ. Người em đi "
    "học xa, sau này trở về mở một lớp học nhỏ, dạy chữ cho con em trong làng không lấy tiền.",
    "Và cứ thế, dòng sông vẫn chảy hiền hòa bên ngôi làng nhỏ, mang theo phù sa bồi đắp cho những cánh "
    "đồng, mang theo cả những ước mơ của bao thế hệ người con đất Việt.",
)

LONG = " ".join(_LONG_PARTS)

TEXTS: dict[str, str] = {
    "sentence": SENTENCE,
    "paragraph": PARAGRAPH,
    "long": LONG,
}

DESCRIPTIONS: dict[str, str] = {
    "sentence": "~1 sentence (~4 s of speech, 1 chunk)",
    "paragraph": "~1 paragraph (~30 s of speech, 3 chunks)",
    "long": "~3 minutes of speech (~170 s, 14 chunks)",
}
